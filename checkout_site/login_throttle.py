"""Staff sign-in (/admin/login/) throttled: a few wrong passwords, then a wait.

After ``ADMIN_LOGIN_MAX_FAILURES`` failed sign-ins for one username from one address, that
username is refused from that address, right password or not, until ``ADMIN_LOGIN_WINDOW_SECONDS``
have passed since the first of them. Counting per address and username, not per username alone,
so that a stranger cannot lock the operator out. A sign-in that succeeds clears the count.

The counters live in the Redis of the order rate limit (``orders/ratelimit.py``), shared by every
web process. When it cannot be reached, sign-in is not throttled, as orders are not.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

import redis
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from orders.ratelimit import client_address, counters

log = logging.getLogger(__name__)


def _key(request: HttpRequest | None, username: str) -> str:
    who = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:24]
    address = client_address(request) if request is not None else "unknown"
    return f"{settings.CHECKOUT_NAMESPACE}:ratelimit:admin-login:{address}:{who}"


def login_wait(*, request: HttpRequest | None, username: str) -> int | None:
    """Seconds until this username may try again from this address, or None if it may now."""
    try:
        pipe = counters().pipeline(transaction=False)
        pipe.get(_key(request, username))
        pipe.ttl(_key(request, username))
        failures, ttl = pipe.execute()
    except redis.RedisError as exc:
        log.warning("admin sign-in not throttled, its counter is unreachable: %s", exc)
        return None
    if failures is None or int(failures) < settings.ADMIN_LOGIN_MAX_FAILURES:
        return None
    return max(1, ttl)


def login_failed(*, request: HttpRequest | None, username: str) -> None:
    try:
        pipe = counters().pipeline(transaction=False)
        pipe.set(_key(request, username), 0, ex=settings.ADMIN_LOGIN_WINDOW_SECONDS, nx=True)
        pipe.incr(_key(request, username))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("admin sign-in failure not counted, its counter is unreachable: %s", exc)


def login_succeeded(*, request: HttpRequest | None, username: str) -> None:
    try:
        counters().delete(_key(request, username))
    except redis.RedisError as exc:
        log.warning("admin sign-in count not cleared, its counter is unreachable: %s", exc)


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's sign-in form, refusing a username that failed too often from this address."""

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username") or "")
        if (wait := login_wait(request=self.request, username=username)) is not None:
            raise ValidationError(
                "Too many failed sign-ins for this username from your address. "
                f"Try again in {math.ceil(wait / 60)} minute(s).",
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            login_failed(request=self.request, username=username)
            raise
        login_succeeded(request=self.request, username=username)
        return cleaned
