"""Pushing stored events to the live pages, and reading them back for a page that catches up.

Every message has the contract's shape: ``{"kind": "event", "event": <envelope>, "status": ...}``
with the payment token masked and the order's status right after that event. The envelope is
the event as stored, in the version it was written with; an event of an older version also
carries ``"current"``, its payload upcast to the type's newest version (masked the same way), so a
page reads one version of each type and never upcasts itself.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import redis
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubLoopLayer
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

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
            # The socket text is encoded here, once, rather than by each of the sockets it
            # reaches. One publish reaches the feed and the order's page alike (orders/fanout.py).
            _publisher.group_send(
                EVENTS_GROUP,
                [{"type": "event.message", "message": m, "text": json.dumps(m)} for m in messages],
            )
        except Exception:
            log.warning("live broadcast failed; pages will catch up from the log", exc_info=True)


def order_notices_send(order_ids: Iterable[int], message: dict[str, Any]) -> None:
    """Show ``message`` to the open pages of these orders, among their events.

    A notice is a message of a kind other than ``"event"``: something the site wants an order's
    page to show that is not in the log (the operator's record says what). It is not replayed:
    a page that was not open reads it again however the site offers it. Like a broadcast, a lost
    one is not fatal, and a failure is logged, never raised.
    """
    groups = sorted({order_group(order_id) for order_id in order_ids})
    envelope = {"type": NOTICE_MESSAGE, "text": json.dumps(message)}
    try:
        for group in groups:
            _publisher.group_send(group, [envelope])
    except Exception:
        log.warning("notice to the order pages failed", exc_info=True)


# A Redis that does not answer holds a delivery up for at most this long.
_PUBLISH_TIMEOUT_S = 5.0


class _Publisher:
    """Publishes to the channel layer's groups from the calling thread, one client per process.

    The layer (channels_redis's pub/sub layer) is asyncio only: from a thread without a loop (a
    Celery task, a request's thread) each send was handed to a loop thread and waited for, two
    thread switches and the asyncio client's work per message. Here the layer itself serializes
    the message and names the group's channel and its Redis, and redis-py PUBLISHes it in one
    round trip, as the layer's ``group_send`` would: the web processes' layers take it as theirs.
    A forked child (the worker's pool) makes its own client on first use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._layer: Any = None
        self._names: Any = None
        self._clients: dict[str, redis.Redis] = {}

    def group_send(self, group: str, messages: list[dict[str, Any]]) -> None:
        layer, names = self._ready()
        if layer is None:
            return
        channel = names._get_group_channel_name(group)
        client = self._client(names._get_shard(channel).host)
        if len(messages) == 1:
            client.publish(channel, layer.serialize(messages[0]))
            return
        with client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(channel, layer.serialize(message))
            pipe.execute()

    def _ready(self) -> tuple[Any, Any]:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._clients = {}
                self._layer = get_channel_layer()
                self._names = None
                if self._layer is not None:
                    # The layer's per-loop half names channels and shards; made here, it opens
                    # no connection of its own.
                    self._names = RedisPubSubLoopLayer(
                        *self._layer._args, **self._layer._kwargs, channel_layer=self._layer
                    )
            return self._layer, self._names

    def _client(self, host: dict[str, Any]) -> redis.Redis:
        address = host["address"]
        with self._lock:
            client = self._clients.get(address)
            if client is None:
                client = redis.Redis.from_url(
                    address,
                    socket_timeout=_PUBLISH_TIMEOUT_S,
                    socket_connect_timeout=_PUBLISH_TIMEOUT_S,
                    # A connection Redis dropped while idle (a restart) is opened again once.
                    retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
                    retry_on_error=[redis.ConnectionError, redis.TimeoutError],
                )
                self._clients[address] = client
            return client


_publisher = _Publisher()
