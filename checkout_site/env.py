"""Read settings from the environment, failing loudly on a value that cannot be right."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def envstr(name: str, default: str) -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum of {minimum}")
    return value


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def envurl(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    value = os.environ.get(name) or default
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name}={value!r} must be a URL starting with one of: "
            + ", ".join(f"{s}://" for s in schemes)
        )
    return value


def redis_namespace(url: str) -> str:
    """A deployment's name in a Redis server, from its URL: host, port and database number.

    Redis pub/sub ignores the database number, so two deployments on one server, on databases
    11 and 12, would hear each other's broadcasts unless what they name there differs.
    """
    parts = urlsplit(url)
    if parts.scheme == "unix":
        where = parts.path.strip("/").replace("/", ".") or "socket"
        database = parse_qs(parts.query).get("db", ["0"])[0]
    else:
        where = f"{parts.hostname or 'localhost'}.{parts.port or 6379}"
        database = parts.path.strip("/") or "0"
    return f"checkout.{where}.{database}"
