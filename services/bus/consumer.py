"""Receiving an event: validate it, then run the service's handler exactly once per event id."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction

from services.bus.registry import handler_for, subscriber
from services.bus.schemas import envelope_validate


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"


def event_consume(*, service: str, data: dict[str, Any]) -> Outcome:
    """Apply ``data`` to ``service``, or do nothing if that service already handled it.

    The inbox row is inserted first, in the same transaction as the handler's effects: a second
    delivery racing the first waits on the row's primary key, then finds it and stops. Raises
    ``ValidationError``/``UnknownEventType``/``NotSubscribed`` for an event that can never apply.
    """
    envelope, payload = envelope_validate(data)
    handler = handler_for(service, envelope.type)
    inbox = subscriber(service).inbox
    try:
        with transaction.atomic():
            inbox.objects.create(
                event_id=envelope.eventId,
                event_type=envelope.type,
                order_id=envelope.orderId,
            )
            handler(envelope, payload)
    except IntegrityError:
        if inbox.objects.filter(event_id=envelope.eventId).exists():
            return Outcome.DUPLICATE
        raise
    return Outcome.HANDLED
