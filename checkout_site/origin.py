"""Which socket handshakes may open: a browser's from this site, or a client that is no browser.

Channels' ``AllowedHostsOriginValidator`` lets in any Origin whose host is in ALLOWED_HOSTS, on
any scheme and port: a page served by anything else on ``127.0.0.1`` could read our sockets, and
a client without an Origin was refused. Here the rule is the one Django's CSRF check applies to
a form post: the Origin must be exactly the site's own, the scheme, host and port the request
came to (its Host, which must be in ALLOWED_HOSTS), or one of CSRF_TRUSTED_ORIGINS. ``null`` and
every other origin are refused with 403. A handshake with no Origin at all is served: browsers
always send one, so what sends none is a script, which no other site can make a visitor run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.request import is_same_domain

_deny = WebsocketDenier.as_asgi()


class SameOriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await _deny(scope, receive, send)
        return await self.application(scope, receive, send)


def origin_allowed(scope: dict[str, Any]) -> bool:
    origins = [value for name, value in scope.get("headers", []) if name == b"origin"]
    if not origins:
        return True
    if len(origins) > 1:
        return False
    origin = origins[0].decode("latin-1").strip().lower()
    site = _site_origin(scope)
    if site is not None and origin == site:
        return True
    return _trusted(origin, settings.CSRF_TRUSTED_ORIGINS)


class _Handshake(HttpRequest):
    """The handshake as Django sees a request, for its Host and scheme rules."""

    def __init__(self, scope: dict[str, Any]) -> None:
        super().__init__()
        self._secure_scheme = scope.get("scheme") in ("wss", "https")
        for name, value in scope.get("headers", []):
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            # As Django's ASGI handler does: two Host headers make one that no rule allows.
            self.META[key] = f"{self.META[key]},{text}" if key in self.META else text
        if scope.get("server"):
            host, port = scope["server"][:2]
            self.META["SERVER_NAME"], self.META["SERVER_PORT"] = str(host), str(port)

    def _get_scheme(self) -> str:
        return "https" if self._secure_scheme else "http"


def _site_origin(scope: dict[str, Any]) -> str | None:
    handshake = _Handshake(scope)
    if "HTTP_HOST" not in handshake.META and "SERVER_NAME" not in handshake.META:
        return None
    try:
        host = handshake.get_host()
    except DisallowedHost:
        return None
    # is_secure() follows SECURE_PROXY_SSL_HEADER, as it does for the pages.
    return f"{'https' if handshake.is_secure() else 'http'}://{host}".lower()


def _trusted(origin: str, trusted: Iterable[str]) -> bool:
    """Django's reading of CSRF_TRUSTED_ORIGINS: exact, or ``scheme://*.domain`` for subdomains."""
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    for entry in trusted:
        entry = entry.lower()
        if "*" not in entry:
            if origin == entry:
                return True
            continue
        pattern = urlsplit(entry)
        if pattern.scheme == parsed.scheme and is_same_domain(
            parsed.netloc, pattern.netloc.lstrip("*")
        ):
            return True
    return False
