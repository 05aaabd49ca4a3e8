"""Where a stored event goes next.

``event_emit`` records an event in the caller's transaction. After that transaction commits,
``outbox_flush`` hands the event to the broker, one message per subscribing service's queue, and
pushes it to the live pages. If the broker cannot take it, the row stays unpublished and the relay
(services/bus/relay.py) sends it later. An event of a rolled-back change is never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from orders.live import envelope_of, events_broadcast
from orders.models import Event
from services.bus.faults import fault_duplicate
from services.bus.registry import subscribers_of
from services.bus.schemas import Envelope, Payload

log = logging.getLogger(__name__)

# Every transaction that appends to the log takes this lock on PostgreSQL, so events commit in
# ``seq`` order: a reader that has seen seq N can never later find a smaller one appear, which is
# what lets a page resume with ?after=N and miss nothing. SQLite has one writer at a time anyway.
_EVENT_LOG_LOCK = 7_340_001

# One quick retry on a fresh connection heals a pooled connection the broker dropped; a broker
# that is really down must not hold up the request that committed: the relay sends the row later.
_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}


def event_emit(
    *,
    order_id: int,
    payload: Payload,
    causation_id: Any | None = None,
    deliver: bool = True,
) -> Event:
    """Store ``payload`` as an event of ``order_id``; must be called inside ``transaction.atomic``.

    The payload was validated when its class was built; the stored JSON is what consumers get.
    ``deliver=False`` records an event for the log and the live pages only: the request-response
    checkout uses it to show what it did, without any service reacting to it.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("event_emit must run in the transaction of the change it reports")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVENT_LOG_LOCK])
    event = Event.objects.create(
        type=payload.type_name(),
        version=payload.version,
        order_id=order_id,
        occurred_at=timezone.now(),
        producer=payload.producer,
        causation_id=causation_id,
        payload=payload.model_dump(mode="json"),
        published_at=None if deliver else timezone.now(),
    )
    if deliver:
        transaction.on_commit(lambda: outbox_flush([event]))
    else:
        transaction.on_commit(lambda: events_broadcast([event]))
    return event


def outbox_flush(events: Iterable[Event], *, broadcast: bool = True) -> list[int]:
    """Send committed events to every subscribing queue; returns the seqs the broker took."""
    from services.bus.tasks import deliver

    events = list(events)
    sent: list[int] = []
    for event in events:
        envelope = envelope_of(event)
        try:
            for service in subscribers_of(event.type):
                # argsrepr: Celery would otherwise put a repr of the whole envelope, payment
                # token included, in the message headers: a quarter of a publish's CPU.
                deliver.apply_async(
                    args=(service, envelope),
                    queue=service,
                    retry_policy=_PUBLISH_RETRY,
                    argsrepr=f"({service!r}, {event.type} seq {event.seq})",
                    kwargsrepr="{}",
                )
                if duplicate := fault_duplicate(service=service, order_id=event.order_id):
                    deliver.apply_async(
                        args=(service, envelope),
                        kwargs={"injected": duplicate.label},
                        queue=service,
                        retry_policy=_PUBLISH_RETRY,
                    )
        except (OperationalError, OSError) as exc:
            log.warning("broker unreachable, seq %s left for the relay: %s", event.seq, exc)
            continue
        sent.append(event.seq)
    if sent:
        Event.objects.filter(seq__in=sent).update(published_at=timezone.now())
    if broadcast:
        events_broadcast(events)
    return sent


__all__ = ["Envelope", "envelope_of", "event_emit", "outbox_flush"]
