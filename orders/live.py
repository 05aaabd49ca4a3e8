"""Pushing stored events to the live pages, and reading them back for a page that catches up.

Every message has the contract's shape: ``{"kind": "event", "event": <envelope>, "status": ...}``
with the payment token masked and the order's status right after that event. The envelope is
the event as stored, in the version it was written with; an event of an older version also
carries ``"current"``, its payload upcast to the type's newest version (masked the same way), so a
page reads one version of each type and never upcasts itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from channels.layers import get_channel_layer

from orders.aggregator import status_fold
from orders.models import Order, OrderStatus
from services.bus.history import order_histories
from services.bus.models import Event
from services.bus.schemas import mask_payload, payload_class, upcast
from services.bus.tracing import tracer

log = logging.getLogger(__name__)

EVENTS_GROUP = "events"
# The channel-layer type of a notice to an order's page (``order_notices_send``).
NOTICE_MESSAGE = "order.notice"


def order_group(order_id: int) -> str:
    return f"order.{order_id}"


def event_message(event: Event, status: str, prev_seq: int) -> dict[str, Any]:
    """``prevSeq`` is the seq of the order's previous event, so an order page can spot a gap."""
    envelope = event.envelope()
    envelope["payload"] = mask_payload(envelope["payload"])
    message = {"kind": "event", "event": envelope, "status": status, "prevSeq": prev_seq}
    current = _current_payload(event)
    if current is not None:
        message["current"] = current
    return message


def _current_payload(event: Event) -> dict[str, Any] | None:
    """The payload of an older version's event as the newest version says it; None for an
    event of the newest version (or of a type no longer known)."""
    try:
        if event.version >= payload_class(event.type).version:
            return None
        lifted = upcast(event.type, event.version, event.payload)
    except ValueError:  # a ValidationError, or an UnknownEventType
        log.warning("event #%s does not upcast; the pages get it as written", event.seq)
        return None
    return mask_payload(lifted.model_dump(mode="json"))


def event_messages(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Messages for ``events`` (in seq order), each with its order's status after it."""
    events = sorted(events, key=lambda e: e.seq)
    if not events:
        return []
    order_ids = {e.order_id for e in events}
    history: dict[int, list[tuple[int, str]]] = defaultdict(list)
    modes: dict[int, str] = {}
    for order_id, seq, type_, mode in order_histories(order_ids, up_to=events[-1].seq):
        history[order_id].append((seq, type_))
        modes[order_id] = mode
    messages = []
    for event in events:
        before = [(s, t) for s, t in history[event.order_id] if s <= event.seq]
        prev_seq = before[-2][0] if len(before) > 1 else 0
        status = status_after((t for _, t in before), mode=modes[event.order_id])
        messages.append(event_message(event, status, prev_seq))
    return messages


def status_after(event_types: Iterable[str], *, mode: str) -> OrderStatus:
    """The order's status once ``event_types`` happened.

    The request-response checkout has no INITIATED: until its payment is taken and its stock
    reserved, its order is PENDING_PAYMENT, as the article's 201 says.
    """
    status = status_fold(event_types)
    if mode == Order.Mode.SYNC and status == OrderStatus.INITIATED:
        return OrderStatus.PENDING_PAYMENT
    return status


def events_broadcast(events: Iterable[Event]) -> None:
    """Send committed events to the live pages: one publish each, to the events group, whose
    member in each web process hands it to the feed and to the event's order's page.

    A lost broadcast is not fatal: pages notice the gap in ``seq`` and ask for what they missed.
    """
    messages = event_messages(events)
    if not messages:
        return
    with tracer.start_as_current_span(
        "broadcast to the live pages", attributes={"checkout.events": len(messages)}
    ):
        try:
            _broadcast_loop.run(_group_send_all(messages), timeout=_BROADCAST_TIMEOUT_S)
        except Exception:
            log.warning("live broadcast failed; pages will catch up from the log", exc_info=True)


_BROADCAST_TIMEOUT_S = 5.0


class _BroadcastLoop:
    """One event loop per process, in a thread of its own, that every broadcast runs on.

    ``async_to_sync`` from a thread with no loop (a Celery task, the relay) starts a new thread
    and a new loop for each call, and the channel layer opens a new Redis connection for each
    loop: that was a third of a delivery's cost. Here the loop and its connections live as long
    as the process. A forked child (the worker's pool) starts its own on first use.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop.run_forever, name="live-broadcast", daemon=True
                ).start()
            return self._loop

    def run(self, coro: Any, *, timeout: float) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._running_loop())
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise


_broadcast_loop = _BroadcastLoop()


def order_notices_send(order_ids: Iterable[int], message: dict[str, Any]) -> None:
    """Show ``message`` to the open pages of these orders, among their events.

    A notice is a message of a kind other than ``"event"``: something the site wants an order's
    page to show that is not in the log (the operator's record says what). It is not replayed:
    a page that was not open reads it again however the site offers it. Like a broadcast, a lost
    one is not fatal, and a failure is logged, never raised.
    """
    groups = sorted({order_group(order_id) for order_id in order_ids})
    if not groups:
        return
    try:
        _broadcast_loop.run(_notices_send(groups, message), timeout=_BROADCAST_TIMEOUT_S)
    except Exception:
        log.warning("notice to the order pages failed", exc_info=True)


async def _notices_send(groups: list[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    envelope = {"type": NOTICE_MESSAGE, "text": json.dumps(message)}
    for group in groups:
        await layer.group_send(group, envelope)


async def _group_send_all(messages: list[dict[str, Any]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for message in messages:
        # The socket text is encoded here, once, rather than by each of the sockets it reaches.
        # One publish reaches the feed and the order's page alike (orders/fanout.py).
        envelope = {"type": "event.message", "message": message, "text": json.dumps(message)}
        await layer.group_send(EVENTS_GROUP, envelope)
