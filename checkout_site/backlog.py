"""What waits to go out to a socket's client, so a consumer can tell one that does not read.

ASGI gives an application no back-pressure on a WebSocket: daphne writes every message into its
Twisted transport at once, and the transport keeps whatever the client has not read, however
much. ``SendBacklogMiddleware`` puts a probe of that buffer in the scope under ``SEND_BACKLOG``:
a function of no arguments that answers the bytes waiting now. Under another server the probe is
not there, and a consumer does without it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

SEND_BACKLOG = "send_backlog"

Backlog = Callable[[], int]


class SendBacklogMiddleware:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        probe = _daphne_backlog(send)
        if probe is not None and SEND_BACKLOG not in scope:
            scope = {**scope, SEND_BACKLOG: probe}
        return await self.application(scope, receive, send)


def _daphne_backlog(send: Any) -> Backlog | None:
    # daphne hands each application ``partial(server.handle_reply, protocol)``.
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    if getattr(protocol, "application_type", None) != "websocket":
        return None
    return lambda: _transport_backlog(getattr(protocol, "transport", None))


def _transport_backlog(transport: Any) -> int:
    """Bytes a Twisted transport holds for its peer (TLS wraps the TCP transport it writes to)."""
    waiting = 0
    for _ in range(3):
        if transport is None:
            break
        waiting += len(getattr(transport, "dataBuffer", b"")) - getattr(transport, "offset", 0)
        waiting += getattr(transport, "_tempDataLen", 0)
        transport = getattr(transport, "transport", None)
    return waiting
