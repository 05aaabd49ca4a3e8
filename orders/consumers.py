"""The live sockets: every event (``/ws/events/``) and one order's journey (``/ws/orders/<id>/``).

Both take ``?after=<seq>`` (the feed must, the order socket may) to replay only what a reconnecting
page has not seen, and both answer ``{"resume": <seq>}`` by replaying what came after that seq.

A socket is open to anyone, so what one client can make the server do is bounded. A resume is
served at most once a second; the ones that come sooner are folded into the next. It replays at
most one batch, and then says ``{"kind": "more", "after": <seq>}`` so the page asks again once it
has read it. Any other frame (not JSON, binary, too long or too deep, another shape) is answered
with ``{"kind": "error", ...}`` and the socket goes on. A client that stops reading while its
socket's send buffer is over ``_BACKLOG_MAX_BYTES`` is given ``_BACKLOG_GRACE_S`` to read, then
closed, and what waited for it is freed with the connection.

Both join the process's fan-out (orders/fanout.py) before they read the log, and both remember
the last ``seq`` they sent: a broadcast at or below it is a repeat and is dropped; a message
that shows a gap makes the consumer read what it missed from the log first. So a page gets
every committed event once, in order, even when the channel layer drops or reorders a
broadcast.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from checkout_site.socket_transport import SEND_BACKLOG, SEND_FRAME
from orders.contract import ID_MAX
from orders.fanout import fanout
from orders.live import NOTICE_MESSAGE, event_messages, order_group
from orders.models import Order
from services.bus.models import Event

_REPLAY_BATCH = 500
# A page sends {"resume": <seq>} and nothing else; anything longer is not one.
_FRAME_MAX_CHARS = 256
_RESUME_INTERVAL_S = 1.0
# Some 400 events' worth, on top of what the kernel holds; a page that reads drains it in no time.
_BACKLOG_MAX_BYTES = 256 * 1024
_BACKLOG_GRACE_S = 5.0
_BACKLOG_POLL_S = 0.05
# The close code for a client dropped because it does not read (RFC 6455: policy violation).
CLOSE_NOT_READING = 1008


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Held by whatever sends events (a live one, a catch-up, a resume), so they go out in
        # seq order and last_seq moves with them.
        self._sending = asyncio.Lock()
        self._resume_from: int | None = None
        self._resumed_at = -math.inf
        self._resumer: asyncio.Task[None] | None = None
        self._dropped = False
        # What the fan-out offered that could not be written at once, for _drain, in order.
        self._offered: collections.deque[tuple[dict[str, Any], str]] = collections.deque()
        self._drainer: asyncio.Task[None] | None = None
        self._live = False

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels' dispatch first hops to the shared sync thread to close stale database
        # connections, for every message. A broadcast touches no database on its way to the
        # socket, and the catch-up that does goes through database_sync_to_async, which closes
        # them itself; with 1,000 feed sockets that hop was most of daphne's time. A client's
        # frame is the same: what it asks for is read through database_sync_to_async, and a
        # flood of frames must not cost a thread hop each.
        if message["type"] == "event.message":
            await self.event_message(message)
        elif message["type"] == NOTICE_MESSAGE:
            # Not an event: no seq, so it goes out as it came, and a page that does not know
            # its kind ignores it (CONTRACT.md, "WebSocket").
            await self._send_text(message["text"])
        elif message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def _catch_up(self, *, batches: int | None = None) -> bool:
        """Send what the log has after ``last_seq``; False if ``batches`` ran out first."""
        sent = 0
        while not self._dropped:
            messages = await _messages_after_shared(self.last_seq, self.order_id)
            for message, text in messages:
                await self._send(message, text)
            sent += 1
            if len(messages) < _REPLAY_BATCH:
                return True
            if batches is not None and sent >= batches:
                return False
        return True

    async def _send(self, message: dict[str, Any], text: str | None = None) -> None:
        await self._send_text(json.dumps(message) if text is None else text)
        self.last_seq = message["event"]["seq"]

    async def _send_text(self, text: str) -> None:
        if not self._dropped:
            await self.send(text_data=text)
            await self._wait_for_reader()

    async def _wait_for_reader(self) -> None:
        """Hold on while the client's send buffer is over the cap; drop a client that stays."""
        if not self._over_backlog():
            return
        backlog = self.scope[SEND_BACKLOG]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _BACKLOG_GRACE_S
        while backlog() > _BACKLOG_MAX_BYTES:
            if loop.time() >= deadline:
                self._dropped = True
                await self.close(code=CLOSE_NOT_READING)
                return
            await asyncio.sleep(_BACKLOG_POLL_S)

    async def event_message(self, envelope: dict[str, Any]) -> None:
        message = envelope["message"]
        seq = message["event"]["seq"]
        async with self._sending:
            if seq <= self.last_seq:
                return
            if self._gap_before(message):
                await self._catch_up()
                if seq <= self.last_seq:
                    return
            await self._send(message, envelope.get("text"))

    def _gap_before(self, message: dict[str, Any]) -> bool:
        raise NotImplementedError

    def offer(self, message: dict[str, Any], text: str, frame: bytes) -> None:
        """A broadcast from the fan-out (orders/fanout.py), in the same pass for every socket.

        It is written at once when nothing else is being sent, nothing offered waits, it follows
        the last message sent, and the client reads; anything else queues it for ``_drain``,
        which takes the usual way (``event_message``), so the order and the checks are the same.
        """
        if self._dropped:
            return
        write = self.scope.get(SEND_FRAME)
        if self._live and write is not None and not self._offered and not self._sending.locked():
            seq = message["event"]["seq"]
            if seq <= self.last_seq:
                return
            if not self._gap_before(message) and not self._over_backlog() and write(frame):
                self.last_seq = seq
                return
        self._offered.append((message, text))
        self._drain_soon()

    def _go_live(self) -> None:
        """Connected: what was offered meanwhile goes out, and offers may be written at once."""
        self._live = True
        self._drain_soon()

    def _drain_soon(self) -> None:
        if self._live and self._offered and (self._drainer is None or self._drainer.done()):
            self._drainer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._offered and not self._dropped:
            message, text = self._offered.popleft()
            await self.event_message({"message": message, "text": text})
        self._offered.clear()

    def _over_backlog(self) -> bool:
        backlog = self.scope.get(SEND_BACKLOG)
        return backlog is not None and backlog() > _BACKLOG_MAX_BYTES

    async def _stop_draining(self) -> None:
        self._dropped = True
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        # A page that suspects it missed something asks: {"resume": <last seq it has>}.
        try:
            seq = _resume_seq(text_data, bytes_data)
        except _BadFrame as error:
            await self._send_text(json.dumps({"kind": "error", "message": str(error)}))
            return
        self._resume_from = seq if self._resume_from is None else min(self._resume_from, seq)
        if self._resumer is None or self._resumer.done():
            self._resumer = asyncio.create_task(self._resume_when_due())

    async def _resume_when_due(self) -> None:
        """Serve the resumes asked for, one at a time and at most one a second."""
        loop = asyncio.get_running_loop()
        while self._resume_from is not None and not self._dropped:
            await asyncio.sleep(max(self._resumed_at + _RESUME_INTERVAL_S - loop.time(), 0))
            after, self._resume_from = self._resume_from, None
            self._resumed_at = loop.time()
            async with self._sending:
                self.last_seq = min(self.last_seq, after)
                if not await self._catch_up(batches=1):
                    await self._send_text(json.dumps({"kind": "more", "after": self.last_seq}))

    async def _stop_resuming(self) -> None:
        if self._resumer is not None:
            self._resumer.cancel()
            await asyncio.gather(self._resumer, return_exceptions=True)


class EventFeedConsumer(_LogConsumer):
    async def connect(self) -> None:
        after = _query_int(self.scope, "after")
        # The process's fan-out is the feed group's member; it offers this socket every event.
        await fanout().join(self)
        await self.accept()
        if after is None:
            self.last_seq = await _last_seq()
            await self.send_json({"kind": "hello", "lastSeq": self.last_seq})
        else:
            self.last_seq = after
            async with self._sending:
                await self._catch_up()
        self._go_live()

    async def disconnect(self, code: int) -> None:
        await self._stop_resuming()
        await self._stop_draining()
        await fanout().leave(self)

    def _gap_before(self, message: dict[str, Any]) -> bool:
        return message["event"]["seq"] > self.last_seq + 1


class OrderTimelineConsumer(_LogConsumer):
    async def connect(self) -> None:
        order_id = int(self.scope["url_route"]["kwargs"]["order_id"])
        if order_id > ID_MAX or not await _order_exists(order_id):
            await self.close(code=4404)
            return
        self.order_id = order_id
        # The process's fan-out offers this socket its order's events; the order's group
        # brings the notices (orders/live.py, order_notices_send).
        await fanout().join(self, order_id=order_id)
        await self.channel_layer.group_add(order_group(self.order_id), self.channel_name)
        await self.accept()
        # A page that reconnects says what it already has; a new one gets the whole journey.
        self.last_seq = _query_int(self.scope, "after") or 0
        async with self._sending:
            await self._catch_up()
        self._go_live()

    async def disconnect(self, code: int) -> None:
        await self._stop_resuming()
        await self._stop_draining()
        if self.order_id is not None:
            await fanout().leave(self, order_id=self.order_id)
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
