"""The feed's fan-out: one member of the feed group per process, handing each broadcast to every
feed socket of that process in one pass.

When each feed socket was a member of the group itself, a broadcast went into 1,000 queues and
woke 1,000 tasks, and each sent it through Channels' send middleware and daphne: some 0.1 ms per
socket per event, on the loop that also answers POST /orders. Here the one member receives it,
builds its WebSocket frame once (checkout_site/socket_transport.py), and offers it to each
socket, which writes it at once when it can (``_LogConsumer.offer`` in orders/consumers.py says
when) and otherwise queues it for its own task. A socket still sends every event once and in
``seq`` order; what it misses it reads from the log, as before.

The member joins the group before the first socket reads the log, and leaves it with the last
socket. There is one per event loop: daphne has one; a test may run several in turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

from checkout_site.socket_transport import text_frame
from orders.live import EVENTS_GROUP

log = logging.getLogger(__name__)

_RETRY_S = 0.5


class FeedSocket(Protocol):
    def offer(self, message: dict[str, Any], text: str, frame: bytes) -> None: ...


class Fanout:
    def __init__(self) -> None:
        self._sockets: set[FeedSocket] = set()
        self._lock = asyncio.Lock()
        self._member: asyncio.Task[None] | None = None
        self._channel = ""

    @property
    def sockets(self) -> int:
        return len(self._sockets)

    async def join(self, socket: FeedSocket) -> None:
        """From now on ``socket`` is offered every broadcast this process receives."""
        async with self._lock:
            if self._member is None:
                layer = get_channel_layer()
                self._channel = await layer.new_channel()
                await layer.group_add(EVENTS_GROUP, self._channel)
                self._member = asyncio.create_task(self._receive(layer, self._channel))
            self._sockets.add(socket)

    async def leave(self, socket: FeedSocket) -> None:
        async with self._lock:
            self._sockets.discard(socket)
            if self._sockets or self._member is None:
                return
            member, self._member = self._member, None
            member.cancel()
            await asyncio.gather(member, return_exceptions=True)
            await get_channel_layer().group_discard(EVENTS_GROUP, self._channel)

    async def _receive(self, layer: Any, channel: str) -> None:
        while True:
            try:
                envelope = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The layer reconnects on its own; a page that missed something reads the log.
                log.warning("the feed's fan-out could not receive; retrying", exc_info=True)
                await asyncio.sleep(_RETRY_S)
                continue
            if envelope.get("type") == "event.message":
                self.offer_all(envelope)

    def offer_all(self, envelope: dict[str, Any]) -> None:
        message = envelope["message"]
        text = envelope.get("text") or json.dumps(message)
        frame = text_frame(text)
        for socket in list(self._sockets):
            try:
                socket.offer(message, text, frame)
            except Exception:
                log.exception("a feed socket failed to take a broadcast")


_fanouts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout] = weakref.WeakKeyDictionary()


def fanout() -> Fanout:
    """This event loop's fan-out."""
    loop = asyncio.get_running_loop()
    current = _fanouts.get(loop)
    if current is None:
        current = _fanouts[loop] = Fanout()
    return current
