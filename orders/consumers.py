"""The live sockets: every event (``/ws/events/``) and one order's journey (``/ws/orders/<id>/``).

Both take ``?after=<seq>`` (the feed must, the order socket may) to replay only what a reconnecting
page has not seen, and both answer ``{"resume": <seq>}`` by replaying everything after that seq.
Any other frame (not JSON, binary, too long or too deep, another shape) is answered with
``{"kind": "error", ...}`` and the socket goes on.

Both join their group before they read the log, and both remember the last ``seq`` they sent:
a group message at or below it is a repeat and is dropped; a message that shows a gap makes the
consumer read what it missed from the log first. So a page gets every committed event once, in
order, even when the channel layer drops or reorders a broadcast.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from orders.contract import ID_MAX
from orders.live import EVENTS_GROUP, event_messages, order_group
from orders.models import Order
from services.bus.models import Event

_REPLAY_BATCH = 500
# A page sends {"resume": <seq>} and nothing else; anything longer is not one.
_FRAME_MAX_CHARS = 256


Replay = list[tuple[dict[str, Any], str]]


@database_sync_to_async
def _messages_after(after: int, order_id: int | None = None) -> Replay:
    """The messages after ``after``, each with its JSON text (encoded here, off the loop)."""
    events = Event.objects.filter(seq__gt=after).order_by("seq")
    if order_id is not None:
        events = events.filter(order_id=order_id)
    return [(m, json.dumps(m)) for m in event_messages(events[:_REPLAY_BATCH])]


_reads: dict[tuple[int, int | None], asyncio.Future[Replay]] = {}


async def _messages_after_shared(after: int, order_id: int | None = None) -> Replay:
    """``_messages_after``, with one read for every socket that asks the same at once.

    Broadcasts from several processes can arrive out of ``seq`` order, and then every feed
    socket sees the same gap at the same moment: 1,000 sockets made 1,000 identical reads.
    A socket that joins a read already under way may miss an event committed just after it
    started; that event's own broadcast, or the next gap check, brings it.
    """
    key = (after, order_id)
    read = _reads.get(key)
    if read is None:
        read = asyncio.ensure_future(_messages_after(after, order_id))
        _reads[key] = read
        read.add_done_callback(lambda _: _reads.pop(key, None))
    return await asyncio.shield(read)


@database_sync_to_async
def _last_seq() -> int:
    return Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@database_sync_to_async
def _order_exists(order_id: int) -> bool:
    return Order.objects.filter(pk=order_id).exists()


class _BadFrame(ValueError):
    pass


def _resume_seq(text_data: str | None, bytes_data: bytes | None) -> int:
    """The seq of a ``{"resume": <seq>}`` frame; ``_BadFrame`` for any other frame."""
    if text_data is None:
        raise _BadFrame("binary frames are not understood")
    if len(text_data) > _FRAME_MAX_CHARS:
        raise _BadFrame("frame too long")
    try:
        content = json.loads(text_data)
    except (ValueError, RecursionError) as error:
        # ValueError covers bad JSON and integers past Python's digit limit.
        raise _BadFrame("not JSON") from error
    if not isinstance(content, dict) or type(content.get("resume")) is not int:
        raise _BadFrame('expected {"resume": <seq>}')
    return min(max(content["resume"], 0), ID_MAX)


class _LogConsumer(AsyncJsonWebsocketConsumer):
    order_id: int | None = None
    last_seq = 0

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch first hops to the shared sync thread to close stale database
        # connections, for every message. A broadcast touches no database on its way to the
        # socket, and the catch-up that does goes through database_sync_to_async, which closes
        # them itself; with 1,000 feed sockets that hop was most of daphne's time. A client's
        # frame is the same: what it asks for is read through database_sync_to_async, and a
        # flood of frames must not cost a thread hop each.
        if message["type"] == "event.message":
            await self.event_message(message)
        elif message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def _catch_up(self) -> None:
        while True:
            messages = await _messages_after_shared(self.last_seq, self.order_id)
            for message, text in messages:
                await self._send(message, text)
            if len(messages) < _REPLAY_BATCH:
                return

    async def _send(self, message: dict[str, Any], text: str | None = None) -> None:
        if text is None:
            await self.send_json(message)
        else:
            await self.send(text_data=text)
        self.last_seq = message["event"]["seq"]

    async def event_message(self, envelope: dict[str, Any]) -> None:
        message = envelope["message"]
        seq = message["event"]["seq"]
        if seq <= self.last_seq:
            return
        if self._gap_before(message):
            await self._catch_up()
            if seq <= self.last_seq:
                return
        await self._send(message, envelope.get("text"))

    def _gap_before(self, message: dict[str, Any]) -> bool:
        raise NotImplementedError

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        # A page that suspects it missed something asks: {"resume": <last seq it has>}.
        try:
            seq = _resume_seq(text_data, bytes_data)
        except _BadFrame as error:
            await self.send_json({"kind": "error", "message": str(error)})
            return
        self.last_seq = min(self.last_seq, seq)
        await self._catch_up()


class EventFeedConsumer(_LogConsumer):
    async def connect(self) -> None:
        after = _query_int(self.scope, "after")
        await self.channel_layer.group_add(EVENTS_GROUP, self.channel_name)
        await self.accept()
        if after is None:
            self.last_seq = await _last_seq()
            await self.send_json({"kind": "hello", "lastSeq": self.last_seq})
        else:
            self.last_seq = after
            await self._catch_up()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(EVENTS_GROUP, self.channel_name)

    def _gap_before(self, message: dict[str, Any]) -> bool:
        return message["event"]["seq"] > self.last_seq + 1


class OrderTimelineConsumer(_LogConsumer):
    async def connect(self) -> None:
        order_id = int(self.scope["url_route"]["kwargs"]["order_id"])
        if order_id > ID_MAX or not await _order_exists(order_id):
            await self.close(code=4404)
            return
        self.order_id = order_id
        await self.channel_layer.group_add(order_group(self.order_id), self.channel_name)
        await self.accept()
        # A page that reconnects says what it already has; a new one gets the whole journey.
        self.last_seq = _query_int(self.scope, "after") or 0
        await self._catch_up()

    async def disconnect(self, code: int) -> None:
        if self.order_id is not None:
            await self.channel_layer.group_discard(order_group(self.order_id), self.channel_name)

    def _gap_before(self, message: dict[str, Any]) -> bool:
        # Seqs of one order are not consecutive; each message names the order's previous one.
        return message.get("prevSeq", 0) > self.last_seq


def _query_int(scope: dict[str, Any], name: str) -> int | None:
    """The query's ``name`` as a seq the database can compare, or None if it is not a number."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    if not values:
        return None
    try:
        return min(max(int(values[0]), 0), ID_MAX)
    except ValueError:
        return None
