"""The live pages' fan-out: one member of the events group per process, handing each broadcast to
every feed socket of that process, and to the sockets of that event's order, in one pass.

When each feed socket was a member of the group itself, a broadcast went into 1,000 queues and
woke 1,000 tasks, and each sent it through Channels' send middleware and daphne: some 0.1 ms per
socket per event, on the loop that also answers POST /orders. Here the one member receives it,
builds its WebSocket frame once (checkout_site/socket_transport.py), and offers it to each
socket, which writes it at once when it can (``_LogConsumer.offer`` in orders/consumers.py says
when) and otherwise queues it for its own task. A socket still sends every event once and in
``seq`` order; what it misses it reads from the log, as before.

An order's page is offered its order's events by the same member, so each event is published
once, to the events group, rather than once more to a group of its order: a process with an
order page open receives every event, and hands on those of its open orders (a dict lookup).

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
        self._orders: dict[int, set[FeedSocket]] = {}
        self._lock = asyncio.Lock()
        self._member: asyncio.Task[None] | None = None
        self._channel = ""

    @property
    def sockets(self) -> int:
        return len(self._sockets) + sum(len(sockets) for sockets in self._orders.values())

    async def join(self, socket: FeedSocket, *, order_id: int | None = None) -> None:
        """From now on ``socket`` is offered every broadcast this process receives, or only
        those of ``order_id``."""
        async with self._lock:
            if self._member is None:
                layer = get_channel_layer()
                self._channel = await layer.new_channel()
                await layer.group_add(EVENTS_GROUP, self._channel)
                self._member = asyncio.create_task(self._receive(layer, self._channel))
            if order_id is None:
                self._sockets.add(socket)
            else:
                self._orders.setdefault(order_id, set()).add(socket)

    async def leave(self, socket: FeedSocket, *, order_id: int | None = None) -> None:
        async with self._lock:
            if order_id is None:
                self._sockets.discard(socket)
            elif order_id in self._orders:
                self._orders[order_id].discard(socket)
                if not self._orders[order_id]:
                    del self._orders[order_id]
            if self.sockets or self._member is None:
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
        order = self._orders.get(message["event"]["orderId"], ())
        for socket in [*self._sockets, *order]:
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
