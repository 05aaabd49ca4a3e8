"""Rate limiting of POST /orders per client: a fixed-window counter in Redis.

Each client (its IP address) may place ORDER_RATE_LIMIT orders per ORDER_RATE_WINDOW_SECONDS;
past that it is answered 429 with ``Retry-After`` until the window ends. The counter lives in
the shared Redis, through Django's cache, so every daphne process counts together. If Redis
cannot be reached the limit is not applied: an outage must not turn away orders, which the
outbox keeps until the broker is back.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

log = logging.getLogger(__name__)

CACHE = "ratelimit"


def order_rate_limited(*, request: HttpRequest) -> int | None:
    """Count this request; return the seconds to wait if the client is over its limit."""
    limit, window = settings.ORDER_RATE_LIMIT, settings.ORDER_RATE_WINDOW_SECONDS
    now = time.time()
    started = math.floor(now / window) * window
    key = f"orders:{_client(request)}:{int(started)}"
    cache = caches[CACHE]
    try:
        cache.add(key, 0, timeout=window + 1)
        count = cache.incr(key)
    except Exception as exc:  # redis-py raises its own errors; any of them means "unknown"
        log.warning("rate limit not applied, its counter is unreachable: %s", exc)
        return None
    if count <= limit:
        return None
    return max(1, math.ceil(started + window - now))


def _client(request: HttpRequest) -> str:
    # REMOTE_ADDR is the peer daphne saw. Behind a proxy, run daphne with --proxy-headers so it
    # is the client's address rather than the proxy's.
    return request.META.get("REMOTE_ADDR") or "unknown"
