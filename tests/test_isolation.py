"""Two deployments on one Redis server, on databases 11 and 12, never see each other.

Redis pub/sub ignores the database number: without a namespace of its own, each deployment's
live feed heard the other's broadcasts. Each deployment here is real: its own daphne and SQLite
database, the same Redis server as the session, no worker (so what it publishes stays queued).
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from kombu import Connection
from kombu.exceptions import ChannelError

from bench.client import Target, WebSocket
from checkout_site import processes
from checkout_site.embedded_redis import free_port
from checkout_site.env import redis_namespace
from tests.helpers import ARTICLE_ORDER

pytestmark = pytest.mark.stack


def _on_database(url: str, number: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


class Deployment:
    def __init__(self, name: str, redis_url: str, folder: Path) -> None:
        self.redis_url = redis_url
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_TEST")}
        env.update(
            REDIS_URL=redis_url,
            CELERY_BROKER_URL=redis_url,
            DATABASE_URL=f"sqlite:///{folder / f'{name}.sqlite3'}",
            EMAIL_URL="memory:",
            ORDER_RATE_LIMIT="2",
            LOG_LEVEL="WARNING",
        )
        processes.manage("migrate", "--noinput", "-v", "0", env=env)
        processes.manage("load_demo", env=env, quiet=True)
        self.daphne = processes.daphne(
            port=self.port, env=env, name=f"daphne-{name}", log=folder / f"{name}.log"
        )
        self.feed: list[dict] = []

    def post(self) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/orders",
            data=json.dumps(ARTICLE_ORDER).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as refused:
            return refused.code

    def depth(self, queue: str) -> int:
        with Connection(self.redis_url) as conn:
            try:
                return conn.default_channel.queue_declare(queue, passive=True).message_count
            except ChannelError:
                return 0

    def heard(self) -> list[str]:
        return [m["event"]["type"] for m in self.feed if m.get("kind") == "event"]


async def _side_by_side(a: Deployment, b: Deployment) -> dict[str, object]:
    sockets = []
    for deployment in (a, b):
        feed = deployment.feed
        sockets.append(
            await WebSocket.connect(
                Target.parse(f"http://127.0.0.1:{deployment.port}"),
                "/ws/events/",
                lambda data, _at, feed=feed: feed.append(json.loads(data)),
            )
        )
    await asyncio.sleep(0.5)  # both feeds subscribed to their groups
    a_posts = [await asyncio.to_thread(a.post) for _ in range(3)]
    await asyncio.sleep(1.5)
    b_heard_meanwhile = b.heard()
    b_posts = [await asyncio.to_thread(b.post) for _ in range(2)]
    await asyncio.sleep(1.5)
    for socket in sockets:
        socket.close()
    return {"a_posts": a_posts, "b_posts": b_posts, "b_heard_meanwhile": b_heard_meanwhile}


def test_two_deployments_on_one_redis_server_share_no_feed_queue_or_counter(tmp_path):
    base = settings.REDIS_URL
    urls = [_on_database(base, number) for number in (11, 12)]
    for url in urls:
        redis.Redis.from_url(url).flushdb()
    assert redis_namespace(urls[0]) != redis_namespace(urls[1])
    a, b = (Deployment(name, url, tmp_path) for name, url in zip("ab", urls, strict=True))
    with processes.ProcessGroup([a.daphne, b.daphne]) as group:
        group.wait()
        seen = asyncio.run(_side_by_side(a, b))

    # Each deployment's rate limit counts its own orders only (2 per window here).
    assert seen["a_posts"] == [202, 202, 429]
    assert seen["b_posts"] == [202, 202]
    assert a.heard() == ["OrderCreated", "OrderCreated"]
    assert seen["b_heard_meanwhile"] == [], "b's feed heard a's orders"
    assert b.heard() == ["OrderCreated", "OrderCreated"]
    assert a.depth("payment") == 2 and b.depth("payment") == 2


@pytest.mark.parametrize(
    ("url", "namespace"),
    [
        ("redis://127.0.0.1:6379/11", "checkout.127.0.0.1.6379.11"),
        ("redis://:secret@cache.internal/3", "checkout.cache.internal.6379.3"),
        ("redis://localhost", "checkout.localhost.6379.0"),
        ("unix:///tmp/redis.sock?db=2", "checkout.tmp.redis.sock.2"),
    ],
)
def test_a_deployments_namespace_names_its_redis_server_and_database(url, namespace):
    assert redis_namespace(url) == namespace
    assert "secret" not in redis_namespace(url)


def test_the_channel_layer_of_this_deployment_carries_its_namespace():
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == settings.CHECKOUT_NAMESPACE
    assert redis_namespace(settings.REDIS_URL) == settings.CHECKOUT_NAMESPACE
