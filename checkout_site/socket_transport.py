"""What daphne's transport under a WebSocket offers its consumer: a probe of what waits to go
out, and a direct write of a frame built once for many sockets.

ASGI gives an application no back-pressure on a WebSocket: daphne writes every message into its
Twisted transport at once, and the transport keeps whatever the client has not read, however
much. ``SocketTransportMiddleware`` puts in the scope, under ``SEND_BACKLOG``, a function of no
arguments that answers the bytes waiting now.

Under ``SEND_FRAME`` it puts a function that writes a frame from ``text_frame`` to the socket and
answers whether it did. A broadcast reaches 1,000 feed sockets; through ASGI each message went
through Channels' send middleware, daphne, autobahn's framing and a Twisted write that registers
the socket with the event loop and writes on the next turn: some 0.1 ms per socket per event,
in the loop that also serves HTTP. The frame is built once per broadcast instead, and written
straight to a socket with nothing waiting (which is what Twisted itself would write on that
next turn); whatever the kernel does not take goes to Twisted's buffer as before, so bytes keep
their order. Under another server (or over TLS in daphne) neither is there, and a consumer sends
through ASGI.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

SEND_BACKLOG = "send_backlog"
SEND_FRAME = "send_frame"

# RFC 6455, 5.2: FIN set, opcode 1 (text); a server's frames are not masked.
_FIN_TEXT = 0x81


def text_frame(text: str) -> bytes:
    """One unfragmented WebSocket text frame carrying ``text``."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", _FIN_TEXT, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload


class SocketTransportMiddleware:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        protocol = _daphne_websocket(send)
        if protocol is not None and SEND_BACKLOG not in scope:
            extra: dict[str, Any] = {SEND_BACKLOG: lambda: _transport_backlog(protocol.transport)}
            if _plain_tcp(protocol.transport):
                extra[SEND_FRAME] = functools.partial(_frame_write, protocol)
            scope = {**scope, **extra}
        return await self.application(scope, receive, send)


def _daphne_websocket(send: Any) -> Any:
    # daphne hands each application ``partial(server.handle_reply, protocol)``.
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    if getattr(protocol, "application_type", None) != "websocket":
        return None
    return protocol


def _plain_tcp(transport: Any) -> bool:
    """A Twisted TCP connection that no TLS layer wraps (a TLS transport has its own buffers)."""
    return getattr(transport, "TLS", None) is False and hasattr(transport, "socket")


def _frame_write(protocol: Any, frame: bytes) -> bool:
    """Write ``frame`` to an open socket, in order after anything already waiting for it."""
    transport = protocol.transport
    if (
        protocol.state != protocol.STATE_OPEN
        # autobahn's own queue of frames to send (a close, a chopped message) goes first.
        or protocol.send_queue
        or transport is None
        or not transport.connected
        or transport.disconnecting
    ):
        return False
    if _transport_backlog(transport):
        transport.write(frame)
        return True
    try:
        sent = transport.socket.send(frame)
    except OSError:
        # A full buffer (BlockingIOError), a signal, a reset or a closed peer: Twisted's own
        # write below keeps the frame, or finds the fault and closes the connection.
        sent = 0
    if sent < len(frame):
        transport.write(frame[sent:])
    return True


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
