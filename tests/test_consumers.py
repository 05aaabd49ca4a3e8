"""The live sockets on the real Redis channel layer: replay, no gap, no repeat, masking, origin.

Each test drives the real ASGI application (origin check included) with ``WebsocketCommunicator``
inside one event loop, and always disconnects. Events come from the real code paths: the
request-response checkout (which records and broadcasts without delivering) or, where production
must run concurrently, the real worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.client import Target
from bench.flood import flood
from checkout_site.asgi import application
from checkout_site.socket_transport import SEND_BACKLOG
from orders import consumers
from orders.aggregator import status_fold
from orders.contract import OrderRequest
from orders.models import Order, OrderStatus
from orders.placement import order_place
from orders.sync_checkout import order_place_sync
from services.bus import schemas
from services.bus.models import Event
from services.bus.outbox import event_emit
from tests.helpers import broadcast_lost_then_one_sent

pytestmark = pytest.mark.django_db(transaction=True)

SAME_ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
ARTICLE = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")


def _run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return async_to_sync(scenario)()


def _sync_order() -> int:
    """Six events, recorded and broadcast by the request-response checkout."""
    return order_place_sync(request=ARTICLE).order.pk


def _seqs(order_id: int | None = None) -> list[int]:
    events = Event.objects.order_by("seq")
    if order_id is not None:
        events = events.filter(order_id=order_id)
    return list(events.values_list("seq", flat=True))


Headers = list[tuple[bytes, bytes]]


async def _open(path: str, headers: Headers = SAME_ORIGIN) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    assert connected, f"{path} refused a same-origin connection"
    return communicator


async def _receive(communicator: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    return [await communicator.receive_json_from(timeout=10) for _ in range(count)]


def test_the_feed_replays_what_came_after_the_given_seq_then_goes_live(customer, product):
    _sync_order()
    before = _seqs()
    after = before[2]

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        feed = await _open(f"/ws/events/?after={after}")
        try:
            replayed = await _receive(feed, len(before) - 3)
            await database_sync_to_async(_sync_order)()
            live = await _receive(feed, 6)
            quiet = await feed.receive_nothing(timeout=0.3)
        finally:
            await feed.disconnect()
        return replayed, live, quiet

    replayed, live, quiet = _run(scenario)

    assert [m["event"]["seq"] for m in replayed] == before[3:]
    assert [m["event"]["seq"] for m in live] == _seqs()[len(before) :]
    assert all(m["kind"] == "event" for m in replayed + live)
    assert quiet, "the feed sent more than the stored events"


def test_the_feed_without_after_says_where_it_starts_and_sends_only_new_events(customer, product):
    _sync_order()

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        feed = await _open("/ws/events/")
        try:
            hello = await feed.receive_json_from(timeout=5)
            await database_sync_to_async(_sync_order)()
            live = await _receive(feed, 6)
        finally:
            await feed.disconnect()
        return hello, live

    hello, live = _run(scenario)

    assert hello == {"kind": "hello", "lastSeq": _seqs()[5]}
    assert [m["event"]["seq"] for m in live] == _seqs()[6:]


@pytest.mark.stack
def test_the_feed_has_no_gap_and_no_repeat_while_events_are_produced_during_its_replay(
    stack, customer, product, monkeypatch
):
    # Small replay batches make the replay take many round trips while the worker keeps
    # committing and broadcasting events from another process.
    monkeypatch.setattr(consumers, "_REPLAY_BATCH", 3)
    for _ in range(2):
        _sync_order()
    orders_to_place = 6
    placed: list[int] = []

    def produce() -> None:
        try:
            for _ in range(orders_to_place):
                placed.append(order_place(request=ARTICLE)[0].pk)
                time.sleep(0.02)
        finally:
            connection.close()

    def all_finished() -> bool:
        if len(placed) < orders_to_place:
            return False
        shipped = Event.objects.filter(order_id__in=placed, type="OrderShipped").count()
        return shipped == orders_to_place

    async def scenario() -> list[int]:
        producer = threading.Thread(target=produce)
        producer.start()
        feed = await _open("/ws/events/?after=0")
        received: list[int] = []
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                if not await feed.receive_nothing(timeout=0.2):
                    received.append((await feed.receive_json_from())["event"]["seq"])
                    continue
                if await database_sync_to_async(all_finished)() and len(received) >= len(
                    await database_sync_to_async(_seqs)()
                ):
                    break
            assert await feed.receive_nothing(timeout=0.5)
        finally:
            await feed.disconnect()
            producer.join()
        return received

    received = _run(scenario)

    assert received == _seqs(), "the feed skipped, repeated or reordered an event"
    assert len(received) == 2 * 6 + orders_to_place * 6


def test_the_feed_reads_an_event_whose_broadcast_was_lost_from_the_log(customer, product):
    order_id = _sync_order()
    last = _seqs()[-1]

    async def scenario() -> tuple[list[int], tuple[int, int]]:
        feed = await _open(f"/ws/events/?after={last}")
        try:
            seqs = await database_sync_to_async(broadcast_lost_then_one_sent)(order_id)
            messages = await _receive(feed, 2)
            assert await feed.receive_nothing(timeout=0.3)
        finally:
            await feed.disconnect()
        return [m["event"]["seq"] for m in messages], seqs

    received, (lost, sent) = _run(scenario)

    assert received == [lost, sent]


def test_a_page_that_asks_to_resume_gets_everything_after_that_seq_again(customer, product):
    _sync_order()
    seqs = _seqs()

    async def scenario() -> list[int]:
        feed = await _open(f"/ws/events/?after={seqs[-1]}")
        try:
            await feed.send_json_to({"resume": seqs[3]})
            messages = await _receive(feed, 2)
            assert await feed.receive_nothing(timeout=0.3)
        finally:
            await feed.disconnect()
        return [m["event"]["seq"] for m in messages]

    assert _run(scenario) == seqs[4:]


def test_the_order_socket_replays_the_order_from_its_first_event_with_the_status_after_each(
    customer, product
):
    order_id = _sync_order()
    _sync_order()  # another order, which must not show up

    async def scenario() -> list[dict[str, Any]]:
        timeline = await _open(f"/ws/orders/{order_id}/")
        try:
            messages = await _receive(timeline, 6)
            assert await timeline.receive_nothing(timeout=0.3)
        finally:
            await timeline.disconnect()
        return messages

    messages = _run(scenario)

    events = [m["event"] for m in messages]
    assert [e["seq"] for e in events] == _seqs(order_id)
    assert {e["orderId"] for e in events} == {order_id}
    assert events[0]["type"] == "OrderCreated" and events[0]["causationId"] is None
    assert [m["status"] for m in messages] == [
        "PENDING_PAYMENT",
        "PENDING_PAYMENT",
        "CONFIRMED",
        "CONFIRMED",
        "CONFIRMED",
        "SHIPPED",
    ]
    assert [m["prevSeq"] for m in messages] == [0, *[e["seq"] for e in events[:-1]]]
    assert set(events[0]) >= {
        "seq",
        "eventId",
        "type",
        "version",
        "orderId",
        "occurredAt",
        "producer",
        "causationId",
        "payload",
    }


def test_the_order_socket_with_after_replays_only_the_rest(customer, product):
    order_id = _sync_order()
    seqs = _seqs(order_id)

    async def scenario() -> list[int]:
        timeline = await _open(f"/ws/orders/{order_id}/?after={seqs[3]}")
        try:
            messages = await _receive(timeline, 2)
            assert await timeline.receive_nothing(timeout=0.3)
        finally:
            await timeline.disconnect()
        return [m["event"]["seq"] for m in messages]

    assert _run(scenario) == seqs[4:]


@pytest.mark.stack
def test_the_order_socket_follows_an_event_driven_order_live_to_shipped(stack, customer, product):
    order, _ = order_place(request=ARTICLE)

    async def scenario() -> list[dict[str, Any]]:
        timeline = await _open(f"/ws/orders/{order.pk}/")
        messages: list[dict[str, Any]] = []
        try:
            while not messages or messages[-1]["event"]["type"] != "OrderShipped":
                messages.append(await timeline.receive_json_from(timeout=20))
        finally:
            await timeline.disconnect()
        return messages

    messages = _run(scenario)

    types = [m["event"]["type"] for m in messages]
    assert types[0] == "OrderCreated"
    assert set(types) >= {"PaymentProcessed", "InventoryUpdated", "OrderConfirmed"}
    for index, message in enumerate(messages):
        assert message["status"] == status_fold(types[: index + 1])
    assert messages[-1]["status"] == OrderStatus.SHIPPED


def test_an_unknown_order_socket_is_refused():
    async def scenario() -> bool:
        communicator = WebsocketCommunicator(application, "/ws/orders/4242/", headers=SAME_ORIGIN)
        connected, _ = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected

    assert _run(scenario) is False


def test_no_socket_message_carries_the_whole_payment_token(customer, product):
    order_id = _sync_order()

    async def scenario() -> list[dict[str, Any]]:
        timeline = await _open(f"/ws/orders/{order_id}/")
        feed = await _open("/ws/events/?after=0")
        try:
            return await _receive(timeline, 6) + await _receive(feed, 6)
        finally:
            await timeline.disconnect()
            await feed.disconnect()

    messages = _run(scenario)

    created = [m for m in messages if m["event"]["type"] == "OrderCreated"]
    assert len(created) == 2
    assert all(m["event"]["payload"]["paymentToken"] == "tok_****c123" for m in created)
    assert "tok_abc123" not in json.dumps(messages)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"origin", b"http://evil.example"), (b"host", b"127.0.0.1:8000")],
        [(b"origin", b"http://127.0.0.1.evil.example"), (b"host", b"127.0.0.1:8000")],
        [(b"origin", b"null"), (b"host", b"127.0.0.1:8000")],
    ],
    ids=["foreign", "look-alike", "null"],
)
@pytest.mark.parametrize("path", ["/ws/events/", "/ws/orders/1/"])
def test_a_socket_from_a_foreign_origin_is_refused(headers, path):
    async def scenario() -> bool:
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected

    assert _run(scenario) is False


def test_an_event_is_broadcast_only_after_its_transaction_commits(customer, product):
    order_id = _sync_order()
    last = _seqs()[-1]

    async def scenario() -> tuple[bool, dict[str, Any], int]:
        feed = await _open(f"/ws/events/?after={last}")
        try:

            def emit_and_look_before_commit() -> tuple[bool, int]:
                with transaction.atomic():
                    event = event_emit(
                        order_id=order_id,
                        payload=schemas.OrderShipped(trackingRef="CL-again"),
                        deliver=False,
                    )
                    silent = async_to_sync(feed.receive_nothing)(timeout=0.5)
                return silent, event.seq

            silent_before_commit, seq = await database_sync_to_async(emit_and_look_before_commit)()
            message = await feed.receive_json_from(timeout=5)
        finally:
            await feed.disconnect()
        return silent_before_commit, message, seq

    silent_before_commit, message, seq = _run(scenario)

    assert silent_before_commit, "the event reached the socket before its transaction committed"
    assert message["event"]["seq"] == seq


def test_an_event_of_a_rolled_back_transaction_is_never_broadcast(customer, product):
    order_id = _sync_order()
    last = _seqs()[-1]

    async def scenario() -> bool:
        feed = await _open(f"/ws/events/?after={last}")
        try:

            def emit_then_roll_back() -> None:
                with transaction.atomic():
                    event_emit(
                        order_id=order_id,
                        payload=schemas.OrderShipped(trackingRef="CL-never"),
                        deliver=False,
                    )
                    transaction.set_rollback(True)

            await database_sync_to_async(emit_then_roll_back)()
            return await feed.receive_nothing(timeout=0.8)
        finally:
            await feed.disconnect()

    assert _run(scenario)
    assert not Order.objects.get(pk=order_id).events.filter(payload__trackingRef="CL-never")


@pytest.mark.own_redis
def test_an_open_feed_keeps_receiving_after_redis_restarts_with_its_data_gone(
    customer, product, embedded_redis
):
    async def scenario() -> list[dict[str, Any]]:
        feed = await _open("/ws/events/")
        try:
            assert (await feed.receive_json_from(timeout=5))["kind"] == "hello"
            await database_sync_to_async(embedded_redis.restart)()
            # redis-py's pub/sub connection reconnects and subscribes to the groups again by
            # itself. Events broadcast in the instant before it has are lost to pub/sub (a page
            # reads them from the log at its next gap); a little later the feed hears them live.
            await asyncio.sleep(2)
            order_id = await database_sync_to_async(_sync_order)()
            received = []
            while len(received) < 6:
                message = await feed.receive_json_from(timeout=15)
                if message["event"]["orderId"] == order_id:
                    received.append(message)
            return received
        finally:
            await feed.disconnect()

    received = _run(scenario)

    assert [m["event"]["type"] for m in received][-1] == "OrderShipped"


# --- what a stranger can send -------------------------------------------------------------------

BAD_PATHS = [
    "/ws/orders/abc/",
    "/ws/orders/-1/",
    "/ws/orders/" + "9" * 5000 + "/",
    f"/ws/orders/{2**63}/",
    "/ws/orders/1",
    "/ws/orders/",
    "/ws/events/more/",
    "/ws/nowhere/",
    "/",
]


@pytest.mark.parametrize("path", BAD_PATHS, ids=lambda p: p[:24])
def test_an_unknown_path_or_order_id_is_refused_at_the_handshake(path, caplog):
    async def scenario() -> tuple[bool, Any]:
        communicator = WebsocketCommunicator(application, path, headers=SAME_ORIGIN)
        try:
            return await communicator.connect(timeout=5)
        finally:
            await communicator.disconnect()

    connected, _ = _run(scenario)

    assert connected is False
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("after", ["9" * 30, "9" * 5000, "x", "%ff"])
def test_an_after_that_is_no_seq_still_opens_the_feed(after, customer, product):
    _sync_order()
    seqs = _seqs()

    async def scenario() -> dict[str, Any]:
        feed = await _open(f"/ws/events/?after={after}")
        try:
            await feed.send_json_to({"resume": seqs[-2]})
            return await _first_event(feed)
        finally:
            await feed.disconnect()

    assert _run(scenario)["event"]["seq"] == seqs[-1]


async def _first_event(communicator: WebsocketCommunicator) -> dict[str, Any]:
    while (message := await communicator.receive_json_from(timeout=5))["kind"] != "event":
        pass
    return message


Frame = dict[str, Any]


def _text(text: str) -> Frame:
    return {"type": "websocket.receive", "text": text}


def _bytes(data: bytes) -> Frame:
    return {"type": "websocket.receive", "bytes": data}


BAD_FRAMES = {
    "not JSON": _text("resume please"),
    "empty": _text(""),
    "binary": _bytes(b'{"resume": 0}'),
    "empty binary": _bytes(b""),
    "deep": _text("[" * 1500 + "]" * 1500),
    "deep and short": _text("[" * 120 + "]" * 120),
    "long": _text(json.dumps({"resume": 0, "pad": "x" * 100_000})),
    "huge int": _text('{"resume": 1' + "0" * 5000 + "}"),
    "string seq": _text('{"resume": "0"}'),
    "float seq": _text('{"resume": 1.5}'),
    "bool seq": _text('{"resume": true}'),
    "NaN": _text('{"resume": NaN}'),
    "list": _text("[0]"),
    "null": _text("null"),
    "other key": _text('{"after": 0}'),
}


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
@pytest.mark.parametrize("path", ["/ws/events/?after={last}", "/ws/orders/{order}/?after={last}"])
def test_a_frame_the_socket_cannot_use_is_answered_with_an_error_and_the_socket_stays_up(
    frame, path, customer, product, caplog
):
    order_id = _sync_order()
    seqs = _seqs()

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        socket = await _open(path.format(last=seqs[-1], order=order_id))
        try:
            await socket.send_input(frame)
            answer = await socket.receive_json_from(timeout=5)
            await socket.send_json_to({"resume": seqs[-2]})
            return answer, await socket.receive_json_from(timeout=5)
        finally:
            await socket.disconnect()

    answer, after_it = _run(scenario)

    assert answer["kind"] == "error" and answer["message"]
    assert after_it["event"]["seq"] == seqs[-1], "the socket stopped working after a bad frame"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _is_resume(frame: Frame) -> bool:
    try:
        content = json.loads(frame.get("text") or "")
    except (ValueError, RecursionError):
        return False
    return isinstance(content, dict) and type(content.get("resume")) is int


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_FRAMES = st.one_of(
    st.text().map(_text),
    st.binary().map(_bytes),
    _JSON.map(lambda value: _text(json.dumps(value))),
    _JSON.map(lambda value: _text(json.dumps({"resume": value}))),
    st.integers(1, 3000).map(lambda depth: _text("[" * depth + "]" * depth)),
).filter(lambda frame: not _is_resume(frame))
# A socket per example: a tenth of the profile's examples (tests/conftest.py) keeps the default
# run within seconds, and CI's deep run still tries a hundred.
_FUZZ_EXAMPLES = max(10, settings().max_examples // 10)


@pytest.fixture
def one_order(customer, product) -> tuple[int, list[int]]:
    order_id = _sync_order()
    return order_id, _seqs()


@settings(
    max_examples=_FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=st.lists(_FRAMES, min_size=1, max_size=4), feed=st.booleans())
def test_any_frame_gets_an_error_or_nothing_and_never_kills_the_socket(
    frames, feed, one_order, caplog
):
    order_id, seqs = one_order
    path = f"/ws/events/?after={seqs[-1]}" if feed else f"/ws/orders/{order_id}/?after={seqs[-1]}"

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        socket = await _open(path)
        try:
            for frame in frames:
                await socket.send_input(frame)
            answers = [await socket.receive_json_from(timeout=5) for _ in frames]
            await socket.send_json_to({"resume": seqs[-2]})
            return answers, await socket.receive_json_from(timeout=5)
        finally:
            await socket.disconnect()

    answers, after_them = _run(scenario)

    assert all(answer["kind"] == "error" for answer in answers)
    assert after_them["event"]["seq"] == seqs[-1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- what one client can make the server do ------------------------------------------------------


def test_resumes_in_a_burst_are_folded_and_each_replays_one_batch(customer, product, monkeypatch):
    monkeypatch.setattr(consumers, "_REPLAY_BATCH", 3)
    _sync_order()
    _sync_order()
    seqs = _seqs()

    async def scenario() -> tuple[list[dict[str, Any]], float, bool]:
        feed = await _open(f"/ws/events/?after={seqs[-1]}")
        try:
            started = time.monotonic()
            for _ in range(200):
                await feed.send_json_to({"resume": 0})
            replies = await _receive(feed, 8)
            took = time.monotonic() - started
            quiet = await feed.receive_nothing(timeout=1.5)
        finally:
            await feed.disconnect()
        return replies, took, quiet

    replies, took, quiet = _run(scenario)

    # 200 frames, two replays: one at once, and one for the 199 that came within the interval.
    batch = [*({"kind": "event", "seq": s} for s in seqs[:3]), {"kind": "more", "after": seqs[2]}]
    assert [_brief(r) for r in replies] == batch + batch
    assert took >= consumers._RESUME_INTERVAL_S, "the second replay came too soon"
    assert quiet, "the burst was answered more than twice"


def _brief(message: dict[str, Any]) -> dict[str, Any]:
    if message["kind"] == "event":
        return {"kind": "event", "seq": message["event"]["seq"]}
    return message


@pytest.mark.parametrize("feed", [True, False], ids=["feed", "order"])
def test_a_page_that_asks_again_after_more_gets_the_whole_log_in_batches(
    feed, customer, product, monkeypatch
):
    monkeypatch.setattr(consumers, "_REPLAY_BATCH", 4)
    monkeypatch.setattr(consumers, "_RESUME_INTERVAL_S", 0.05)
    order_id = _sync_order()
    for _ in range(2):
        _emit_shipped(order_id)
    seqs = _seqs()
    path = f"/ws/events/?after={seqs[-1]}" if feed else f"/ws/orders/{order_id}/?after={seqs[-1]}"

    async def scenario() -> list[int]:
        socket = await _open(path)
        received: list[int] = []
        try:
            await socket.send_json_to({"resume": 0})
            while not await socket.receive_nothing(timeout=0.5):
                message = await socket.receive_json_from()
                if message["kind"] == "more":
                    await socket.send_json_to({"resume": message["after"]})
                else:
                    received.append(message["event"]["seq"])
        finally:
            await socket.disconnect()
        return received

    assert _run(scenario) == seqs


def _emit_shipped(order_id: int) -> None:
    with transaction.atomic():
        event_emit(
            order_id=order_id, payload=schemas.OrderShipped(trackingRef="CL-more"), deliver=False
        )


def _queued_text(communicator: WebsocketCommunicator) -> Callable[[], int]:
    """The test client's own send backlog: the text the consumer sent that it has not read."""

    def backlog() -> int:
        queued = communicator.output_queue._queue  # type: ignore[attr-defined]
        return sum(len(message.get("text") or "") for message in queued)

    return backlog


def test_a_client_that_does_not_read_is_closed_once_its_backlog_stays_over_the_cap(
    customer, product, monkeypatch
):
    monkeypatch.setattr(consumers, "_BACKLOG_MAX_BYTES", 3000)
    monkeypatch.setattr(consumers, "_BACKLOG_GRACE_S", 0.3)
    for _ in range(3):
        _sync_order()

    async def scenario() -> list[dict[str, Any]]:
        feed = WebsocketCommunicator(application, "/ws/events/?after=0", headers=SAME_ORIGIN)
        feed.scope[SEND_BACKLOG] = _queued_text(feed)
        try:
            assert (await feed.connect(timeout=5))[0]
            for _ in range(50):
                await feed.send_json_to({"resume": 0})
            # The client reads nothing for a while, then looks at what was queued for it.
            await asyncio.sleep(1.0)
            output = []
            while not output or output[-1]["type"] != "websocket.close":
                output.append(await feed.receive_output(timeout=5))
            assert await feed.receive_nothing(timeout=1.2)
            return output
        finally:
            await feed.disconnect()

    output = _run(scenario)

    texts = [m["text"] for m in output if m["type"] == "websocket.send"]
    assert output[-1] == {"type": "websocket.close", "code": consumers.CLOSE_NOT_READING}
    assert 0 < len(texts) == len(output) - 1
    # It stopped with the message that took the backlog over the cap: not the 18 events, and
    # not 50 replays of them.
    assert sum(map(len, texts)) <= 3000 + max(map(len, texts)) < 18 * min(map(len, texts))


def test_a_client_that_reads_is_never_dropped(customer, product, monkeypatch):
    monkeypatch.setattr(consumers, "_BACKLOG_MAX_BYTES", 3000)
    monkeypatch.setattr(consumers, "_BACKLOG_GRACE_S", 1.0)
    for _ in range(3):
        _sync_order()
    seqs = _seqs()

    async def scenario() -> tuple[list[int], dict[str, Any]]:
        feed = WebsocketCommunicator(application, "/ws/events/?after=0", headers=SAME_ORIGIN)
        feed.scope[SEND_BACKLOG] = _queued_text(feed)
        try:
            assert (await feed.connect(timeout=5))[0]
            received = [m["event"]["seq"] for m in await _receive(feed, len(seqs))]
            await feed.send_json_to({"resume": seqs[-2]})
            return received, await feed.receive_json_from(timeout=5)
        finally:
            await feed.disconnect()

    received, after = _run(scenario)

    assert received == seqs
    assert after["event"]["seq"] == seqs[-1]


def _a_long_log(events: int) -> None:
    """``events`` stored events of as many orders, each message about 700 bytes on a socket."""
    now = timezone.now()
    Event.objects.bulk_create(
        Event(
            type="NotificationSent",
            version=1,
            order_id=1_000_000 + n,
            mode=Event.Mode.SYNC,
            occurred_at=now,
            producer="notification",
            payload={"kind": "confirmed", "to": "ada@example.com", "subject": "x" * 400},
            published_at=now,
        )
        for n in range(events)
    )


def test_a_client_that_floods_resumes_and_never_reads_is_dropped_and_daphne_stays_small(
    live_site,
):
    # More than the kernel's buffers take. 1,300 resumes of it, unbounded, would queue 5 GB.
    _a_long_log(6000)

    result = flood(Target.parse(live_site.url), live_site.process.pid, frames=1300)

    assert result.dropped_after_s is not None, f"daphne kept a client that does not read: {result}"
    assert result.rss_peak_mib - result.rss_before_mib < 40, result
    assert result.rss_after_mib - result.rss_before_mib < 20, result
