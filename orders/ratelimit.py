"""Rate limiting of POST /orders per client: a fixed-window counter in Redis.

Each client (its IP address) may place ORDER_RATE_LIMIT orders per ORDER_RATE_WINDOW_SECONDS;
past that it is answered 429 with ``Retry-After`` until the window ends. The counter lives in
the shared Redis (``ORDER_RATE_REDIS_URL``), so every daphne process counts together. If Redis
cannot be reached the limit is not applied: an outage must not turn away orders, which the
outbox keeps until the broker is back.

One client per process, and one round trip per request: Django's cache would open a connection
per request under daphne (its caches belong to a thread, and every request has a thread of its
own), which was a fifth of a ``POST /orders``.
"""

from __future__ import annotations

import functools
import logging
import math
import time

import redis
from django.conf import settings
from django.http import HttpRequest

log = logging.getLogger(__name__)


def order_rate_limited(*, request: HttpRequest) -> int | None:
    """Count this request; return the seconds to wait if the client is over its limit."""
    limit, window = settings.ORDER_RATE_LIMIT, settings.ORDER_RATE_WINDOW_SECONDS
    now = time.time()
    started = math.floor(now / window) * window
    key = f"{settings.CHECKOUT_NAMESPACE}:ratelimit:orders:{client_address(request)}:{int(started)}"
    try:
        pipe = counters().pipeline(transaction=False)
        pipe.set(key, 0, ex=window + 1, nx=True)
        pipe.incr(key)
        _, count = pipe.execute()
    except redis.RedisError as exc:
        log.warning("rate limit not applied, its counter is unreachable: %s", exc)
        return None
    if count <= limit:
        return None
    return max(1, math.ceil(started + window - now))


def counters() -> redis.Redis:
    """The Redis that holds the site's counters (this limit's, and the admin sign-in's)."""
    return _redis(settings.ORDER_RATE_REDIS_URL)


@functools.cache
def _redis(url: str) -> redis.Redis:
    # redis-py's pool is safe across threads and opens new connections in a forked child.
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR is the peer daphne saw. Behind a proxy, run daphne with --proxy-headers so it
    # is the client's address rather than the proxy's.
    return request.META.get("REMOTE_ADDR") or "unknown"
