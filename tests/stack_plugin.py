"""Loaded with ``-p tests.stack_plugin``, before pytest-django reads the settings.

It starts an embedded Redis (unless REDIS_URL names one) and a TCP proxy in front of the broker
that only this process uses: cutting the proxy is a real broker outage as the order service sees
it, while the worker keeps its own connection.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.netproxy import TcpProxy

_state: dict[str, Any] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: Any) -> None:
    from checkout_site.embedded_redis import EmbeddedRedis

    # The suite places orders by the thousand from one address; the rate limit's own tests set
    # theirs. Exported, so the worker and daphne it starts count alike.
    os.environ.setdefault("ORDER_RATE_LIMIT", "1000000000")
    if not os.environ.get("REDIS_URL"):
        redis = EmbeddedRedis().start()
        _state["redis"] = redis
        os.environ["REDIS_URL"] = redis.url
    broker = os.environ.get("CELERY_BROKER_URL") or os.environ["REDIS_URL"]
    parts = urlsplit(broker)
    default_port = 5672 if parts.scheme.startswith("amqp") else 6379
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port).start()
    _state.update(broker=broker, proxy=proxy)
    credentials = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    os.environ["CELERY_BROKER_URL"] = urlunsplit(
        parts._replace(netloc=f"{credentials[0]}@{host}" if len(credentials) == 2 else host)
    )
    _state["mail_dir"] = tempfile.mkdtemp(prefix="checkout-mail-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if "proxy" in _state:
        _state["proxy"].stop()
    if "redis" in _state:
        _state["redis"].stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A shared Redis (REDIS_URL) is not ours to restart: such tests are deselected, so a run
    # on it reports them as not run instead of counting a skip as a pass.
    if "redis" in _state:
        return
    left_out = [item for item in items if item.get_closest_marker("own_redis")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]
