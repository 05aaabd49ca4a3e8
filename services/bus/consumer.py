"""Receiving an event: validate it, then run the service's handler exactly once per event id."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from services.bus import hooks
from services.bus.deliveries import delivery_duplicate, delivery_handled
from services.bus.registry import handler_for, subscriber
from services.bus.rows import row_insert
from services.bus.schemas import Envelope, Payload, envelope_validate, payload_upcast
from services.bus.tracing import delivery_span

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"


def event_consume(
    *, service: str, data: dict[str, Any], attempt: int = 1, injected: str = ""
) -> Outcome:
    """Apply ``data`` to ``service``, or do nothing if that service already handled it.

    The inbox row is inserted first, in the same transaction as the handler's effects and the
    delivery's record: a second delivery racing the first waits on the row's primary key, then
    finds it and stops. Raises ``ValidationError``/``UnknownEventType``/``NotSubscribed`` for an
    event that can never apply. The handler gets the payload upcast to its type's newest
    version; the envelope keeps the version the event was written with. ``injected`` names a
    fault that made this delivery (a duplicate).

    The service's policy (``hooks.policy_for``) may drop the inbox: the handler then runs for
    every copy, and only the guards of the service's own effect (its checks, its unique
    constraints) stand between a repeat and a repeated effect.
    """
    received_at = timezone.now()
    envelope, written = envelope_validate(data)
    # Every handler sees its type's newest version, whatever version the event was written in.
    payload = payload_upcast(written)
    with delivery_span(
        service=service,
        event_type=envelope.type,
        seq=envelope.seq,
        order_id=envelope.orderId,
        carrier=envelope.metadata,
    ):
        outcome = _consume(service, envelope, payload, attempt, injected, received_at)
        log.info(
            "%s %s #%s of order %s: %s",
            service,
            envelope.type,
            envelope.seq,
            envelope.orderId,
            outcome.value,
            extra={
                "service": service,
                "event_type": envelope.type,
                "seq": envelope.seq,
                "order_id": envelope.orderId,
                "outcome": outcome.value,
            },
        )
    return outcome


def _consume(
    service: str,
    envelope: Envelope,
    payload: Payload,
    attempt: int,
    injected: str,
    received_at: datetime,
) -> Outcome:
    handler = handler_for(service, envelope.type)
    inbox = subscriber(service).inbox
    policy = hooks.policy_for(service, order_id=envelope.orderId)
    context = hooks.DeliveryContext(
        service=service,
        event_id=str(envelope.eventId),
        order_id=envelope.orderId,
        attempt=attempt,
        policy=policy,
    )
    with hooks.delivery_notes(injected, policy.note) as applied, hooks.delivering(context):
        hooks.delivery_run(service=service, order_id=envelope.orderId)
        try:
            with transaction.atomic():
                if policy.inbox:
                    row_insert(
                        inbox(
                            event_id=envelope.eventId,
                            event_type=envelope.type,
                            order_id=envelope.orderId,
                        )
                    )
                started = time.perf_counter()
                handler(envelope, payload)
                delivery_handled(
                    envelope=envelope,
                    service=service,
                    attempt=attempt,
                    received_at=received_at,
                    wait_ms=(received_at - envelope.occurredAt).total_seconds() * 1000,
                    handler_ms=(time.perf_counter() - started) * 1000,
                    faults=applied,
                )
        except IntegrityError:
            if inbox.objects.filter(event_id=envelope.eventId).exists():
                delivery_duplicate(
                    envelope=envelope, service=service, received_at=received_at, faults=applied
                )
                return Outcome.DUPLICATE
            raise
    return Outcome.HANDLED
