"""Site-wide views that belong to no service: is the process up, can it do its work."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from checkout_site.celery import app
from orders.contract import Readiness

# Each part gets this long to answer: a probe must answer before the balancer gives up on it.
_TIMEOUT_S = 1.0


@csrf_exempt  # read-only: any other method is answered 405, not 403
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """A liveness probe, and the no-op view the benchmark compares POST /orders with."""
    return HttpResponse(b"ok", content_type="text/plain")


@csrf_exempt
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when the database, the broker and the channel layer answer, else 503."""
    checks = {name: _answer(check) for name, check in _CHECKS.items()}
    down = [name for name, result in checks.items() if result != "ok"]
    return Readiness(ready=not down, checks=checks, down=down).response(503 if down else 200)


def _answer(check: Callable[[], None]) -> str:
    started = time.monotonic()
    try:
        check()
    except Exception as exc:  # a probe reports what failed; it never fails itself
        return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    if time.monotonic() - started > _TIMEOUT_S * 2:
        return "too slow"
    return "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=_TIMEOUT_S)
        conn.default_channel  # noqa: B018 (opening a channel is the real check on AMQP)


def _channel_layer() -> None:
    _redis(settings.REDIS_URL).ping()


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=_TIMEOUT_S, socket_timeout=_TIMEOUT_S)


_CHECKS: dict[str, Callable[[], None]] = {
    "database": _database,
    "broker": _broker,
    "channel_layer": _channel_layer,
}
