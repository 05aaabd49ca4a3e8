"""Reading an order's history back from the event log.

A service may learn a fact from an event it does not subscribe to: it reads the event from the
log when it needs it, instead of taking a delivery of its own for every order. The log is the
bus's, and an event in it is committed before anything it caused is, so an event a service is
handling can always find the ones that led to it.
"""

from __future__ import annotations

from services.bus.models import Event
from services.bus.schemas import Payload, envelope_validate, payload_upcast


class NotInLog(LookupError):
    """The log holds no such event for the order: the delivery is retried, then dead-lettered."""


def order_event(order_id: int, type_name: str) -> Payload:
    """The order's first event of ``type_name``, read as its type's newest version."""
    stored = Event.objects.filter(order_id=order_id, type=type_name).order_by("seq").first()
    if stored is None:
        raise NotInLog(f"no {type_name} in the log for order {order_id}")
    _, written = envelope_validate(stored.envelope())
    return payload_upcast(written)
