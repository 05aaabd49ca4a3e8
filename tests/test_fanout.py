"""The feed's fan-out (orders/fanout.py) and the frames it writes to sockets.

A broadcast reaches every feed socket of a process in one pass; a socket that can take it at once
gets the frame written straight to its connection, and any other goes the usual way. These tests
hold both ways to what the feed promises: every committed event once, in ``seq`` order; a client
that does not read is closed. The first ones drive real daphne with real sockets; the others put
a recording frame writer in the scope, where daphne's would be, to steer each way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from bench.client import Target, WebSocket, _WebSocketProtocol
from checkout_site.asgi import application
from checkout_site.socket_transport import SEND_BACKLOG, SEND_FRAME, text_frame
from orders import consumers
from orders.contract import OrderRequest
from orders.fanout import fanout
from orders.sync_checkout import order_place_sync
from services.bus.models import Event
from tests.helpers import broadcast_lost_then_one_sent

pytestmark = pytest.mark.django_db(transaction=True)

SAME_ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
ARTICLE = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")


def _sync_order() -> int:
    """Six events, recorded and broadcast by the request-response checkout."""
    return order_place_sync(request=ARTICLE).order.pk


def _seqs() -> list[int]:
    return list(Event.objects.order_by("seq").values_list("seq", flat=True))


def _read_frames(data: bytes) -> list[str]:
    """The text messages in ``data``, read by the benchmark's client (bench/client.py)."""
    got: list[str] = []

    async def read() -> None:
        protocol = _WebSocketProtocol(lambda message, _: got.append(message.decode()))
        protocol._upgraded = True
        # In pieces, as a socket delivers them: a frame may end anywhere.
        for start in range(0, len(data), 1000):
            protocol.data_received(data[start : start + 1000])

    async_to_sync(read)()
    return got


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_a_text_frame_of_any_length_reads_back_as_its_text(size):
    text = ("é" * size)[:size] if size % 2 else "x" * size
    frames = text_frame(text) + text_frame("next")

    assert _read_frames(frames) == [text, "next"]


def test_a_text_frame_says_its_length_in_the_shortest_form():
    assert text_frame("a" * 125)[:2] == bytes([0x81, 125])
    assert text_frame("a" * 126)[:4] == bytes([0x81, 126, 0, 126])
    assert text_frame("a" * 65536)[:10] == bytes([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0])


async def _feeds(target: Target, count: int, path: str) -> list[tuple[WebSocket, list[dict]]]:
    opened = []
    for _ in range(count):
        received: list[dict] = []
        socket = await WebSocket.connect(
            target, path, lambda data, _, into=received: into.append(json.loads(data))
        )
        opened.append((socket, received))
    return opened


def _events(received: list[dict]) -> list[int]:
    return [m["event"]["seq"] for m in received if m.get("kind") == "event"]


def test_every_feed_socket_on_daphne_gets_every_event_once_and_in_order(
    live_site, customer, product
):
    target = Target.parse(live_site.url)

    async def scenario() -> tuple[list[list[dict]], list[dict]]:
        feeds = await _feeds(target, 40, "/ws/events/")
        late: list[tuple[WebSocket, list[dict]]] = []
        try:
            await _until(lambda: all(r for _, r in feeds))  # each has its hello
            for _ in range(3):
                await database_sync_to_async(_sync_order)()
            # A page that opens late and asks for the whole log, while events keep coming.
            late += await _feeds(target, 1, "/ws/events/?after=0")
            await database_sync_to_async(_sync_order)()
            await _until(lambda: all(len(_events(r)) >= 18 for _, r in feeds))
            await _until(lambda: len(_events(late[0][1])) >= 24)
            await asyncio.sleep(0.3)  # anything extra would show up by now
            return [r for _, r in feeds], late[0][1]
        finally:
            for socket, _ in feeds + late:
                socket.close()

    feeds, late = async_to_sync(scenario)()

    seqs = _seqs()
    assert len(seqs) == 24
    for received in feeds:
        assert received[0]["kind"] == "hello"
        assert _events(received) == seqs
    assert _events(late) == seqs
    # One text for everyone: the frame is built once and carries the contract's message.
    assert all(r[1:] == feeds[0][1:] for r in feeds)
    assert feeds[0][1]["event"]["payload"]["paymentToken"] != "tok_abc123"


async def _until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the sockets")
        await asyncio.sleep(0.02)


class _Writer:
    """Where daphne's frame writer would be: records what it writes, or refuses it."""

    def __init__(self, *, accepts: bool = True) -> None:
        self.accepts = accepts
        self.frames: list[bytes] = []

    def __call__(self, frame: bytes) -> bool:
        if self.accepts:
            self.frames.append(frame)
        return self.accepts

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in _read_frames(b"".join(self.frames))]


async def _feed(path: str, writer: _Writer, backlog: Callable[[], int] = lambda: 0):
    feed = WebsocketCommunicator(application, path, headers=SAME_ORIGIN)
    feed.scope[SEND_FRAME] = writer
    feed.scope[SEND_BACKLOG] = backlog
    assert (await feed.connect(timeout=5))[0]
    return feed


def test_a_socket_that_can_take_a_broadcast_gets_its_frame_and_nothing_through_asgi(
    customer, product
):
    writer = _Writer()
    _sync_order()  # the log's seqs need not start at 1: the feed starts after a real one

    async def scenario() -> tuple[dict, bool]:
        feed = await _feed("/ws/events/", writer)
        try:
            hello = await feed.receive_json_from(timeout=5)
            for _ in range(2):
                await database_sync_to_async(_sync_order)()
            await _until(lambda: len(writer.frames) >= 12)
            return hello, await feed.receive_nothing(timeout=0.3)
        finally:
            await feed.disconnect()

    hello, quiet = async_to_sync(scenario)()

    assert hello == {"kind": "hello", "lastSeq": _seqs()[5]}
    assert [m["event"]["seq"] for m in writer.messages()] == _seqs()[6:]
    assert quiet, "a broadcast went out twice"


def test_a_socket_whose_writer_refuses_gets_every_event_the_usual_way(customer, product):
    writer = _Writer(accepts=False)

    async def scenario() -> list[dict]:
        feed = await _feed("/ws/events/?after=0", writer)
        try:
            await database_sync_to_async(_sync_order)()
            return [await feed.receive_json_from(timeout=5) for _ in range(6)]
        finally:
            await feed.disconnect()

    received = async_to_sync(scenario)()

    assert [m["event"]["seq"] for m in received] == _seqs()
    assert writer.frames == []


def test_an_event_whose_broadcast_was_lost_comes_from_the_log_before_the_next_one(
    customer, product
):
    writer = _Writer()
    order_id = _sync_order()
    last = _seqs()[-1]

    async def scenario() -> list[dict]:
        feed = await _feed(f"/ws/events/?after={last}", writer)
        try:
            await database_sync_to_async(broadcast_lost_then_one_sent)(order_id)
            # The gap sends the socket the usual way: it reads the log, then sends both.
            received = [await feed.receive_json_from(timeout=5) for _ in range(2)]
            await database_sync_to_async(_sync_order)()
            await _until(lambda: len(writer.frames) >= 6)
            return received
        finally:
            await feed.disconnect()

    received = async_to_sync(scenario)()

    seqs = _seqs()
    assert [m["event"]["seq"] for m in received] == seqs[6:8]
    # Caught up again, the next order's events are written at once.
    assert [m["event"]["seq"] for m in writer.messages()] == seqs[8:]


def test_a_client_that_does_not_read_gets_no_frame_and_is_closed(customer, product, monkeypatch):
    monkeypatch.setattr(consumers, "_BACKLOG_GRACE_S", 0.3)
    writer = _Writer()
    backlog = {"bytes": 0}

    async def scenario() -> dict:
        feed = await _feed("/ws/events/", writer, backlog=lambda: backlog["bytes"])
        try:
            await feed.receive_json_from(timeout=5)
            backlog["bytes"] = consumers._BACKLOG_MAX_BYTES + 1
            await database_sync_to_async(_sync_order)()
            while (output := await feed.receive_output(timeout=5))["type"] != "websocket.close":
                pass
            return output
        finally:
            await feed.disconnect()

    closed = async_to_sync(scenario)()

    assert closed == {"type": "websocket.close", "code": consumers.CLOSE_NOT_READING}
    assert writer.frames == []


def test_the_fan_out_leaves_the_group_with_its_last_socket_and_joins_again_with_the_next(
    customer, product
):
    first, second = _Writer(), _Writer()
    _sync_order()

    async def scenario() -> tuple[int, int]:
        feed = await _feed("/ws/events/", first)
        await feed.receive_json_from(timeout=5)
        during = fanout().sockets
        await feed.disconnect()
        after = fanout().sockets
        again = await _feed("/ws/events/", second)
        try:
            await again.receive_json_from(timeout=5)
            await database_sync_to_async(_sync_order)()
            await _until(lambda: len(second.frames) >= 6)
        finally:
            await again.disconnect()
        return during, after

    during, after = async_to_sync(scenario)()

    assert (during, after) == (1, 0)
    assert first.frames == []
    assert [m["event"]["seq"] for m in second.messages()] == _seqs()[6:]


@pytest.mark.own_redis
@pytest.mark.parametrize("path", ["/ws/events/", "/ws/orders/{order_id}/"])
def test_a_page_opened_after_redis_restarted_while_no_page_was_open_is_served(
    live_site, customer, product, embedded_redis, path
):
    # daphne's pub/sub connection is idle (no socket subscribed) when Redis goes away, so nothing
    # notices until the next page subscribes on it; that page must not be the one that pays.
    target = Target.parse(live_site.url)
    order_id = _sync_order()
    path = path.format(order_id=order_id)

    async def scenario() -> list[dict]:
        (warm, received), *_ = await _feeds(target, 1, path)
        await _until(lambda: bool(received))
        warm.close()
        await asyncio.sleep(0.3)  # daphne has seen the close and left the group
        await database_sync_to_async(embedded_redis.restart)()
        (socket, received), *_ = await _feeds(target, 1, path)
        try:
            await _until(lambda: bool(received))
            await database_sync_to_async(_sync_order)()
            if "events" in path:
                await _until(lambda: len(_events(received)) >= 6)
            return received
        finally:
            socket.close()

    received = async_to_sync(scenario)()

    if "events" in path:
        assert received[0]["kind"] == "hello"
        # Subscribed again, it hears the next order live.
        assert _events(received) == _seqs()[6:]
    else:
        assert [m["event"]["seq"] for m in received if m.get("kind") == "event"] == _seqs()[:6]


def test_an_order_page_is_offered_its_own_orders_events_only_and_each_once(customer, product):
    mine_writer, other_writer = _Writer(), _Writer()
    mine, other = _sync_order(), _sync_order()

    async def scenario() -> tuple[list[dict], list[dict], tuple[int, int], int]:
        page = await _feed(f"/ws/orders/{mine}/", mine_writer)
        watcher = await _feed(f"/ws/orders/{other}/", other_writer)
        try:
            # The journeys so far come from the log, through ASGI.
            replayed = [await page.receive_json_from(timeout=5) for _ in range(6)]
            others = [await watcher.receive_json_from(timeout=5) for _ in range(6)]
            during = fanout().sockets
            # Live and in step: written straight to the page's connection.
            await database_sync_to_async(_one_more)(mine)
            await _until(lambda: len(mine_writer.frames) >= 1)
            # A gap: the lost one is read from the log, then the sent one follows.
            lost, _ = await database_sync_to_async(broadcast_lost_then_one_sent)(mine)
            more = [await page.receive_json_from(timeout=5) for _ in range(2)]
            await database_sync_to_async(_sync_order)()  # a third order: no one's page
            quiet = await page.receive_nothing(timeout=0.3)
            quiet = quiet and await watcher.receive_nothing(timeout=0.1)
            assert quiet, "an order page got another order's event"
        finally:
            await page.disconnect()
            await watcher.disconnect()
        return replayed + more, others, (during, fanout().sockets), lost

    received, others, sockets, lost = async_to_sync(scenario)()

    assert sockets == (2, 0), "both joined the fan-out, and both left it"
    written = [m["event"]["seq"] for m in mine_writer.messages()]
    mine_seqs = [m["event"]["seq"] for m in received]
    assert len(written) == 1
    assert sorted(mine_seqs + written) == _seqs_of(mine)
    assert lost in mine_seqs
    assert [m["event"]["seq"] for m in others] == _seqs_of(other)
    assert other_writer.frames == []


def _one_more(order_id: int) -> int:
    from django.db import transaction

    from services.bus import schemas
    from services.bus.outbox import event_emit

    with transaction.atomic():
        payload = schemas.NotificationSent(kind="confirmed", to="a@b.c", subject="x")
        return event_emit(order_id=order_id, payload=payload, deliver=False).seq


def _seqs_of(order_id: int) -> list[int]:
    return list(
        Event.objects.filter(order_id=order_id).order_by("seq").values_list("seq", flat=True)
    )
