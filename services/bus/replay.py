"""Catching a subscriber up from the log: every stored event of one type, to one service.

The events go through the publisher's own send (``event_send``: the service's queue, the task
its delivery policy picks, the copies the hooks ask for) in ``seq`` order, so the service
handles them on the same idempotent path as live ones: an event it already handled, or one that
comes both replayed and live, is dropped by its inbox. The producers change nothing.
"""

from __future__ import annotations

from django.db.models import Max

from services.bus.models import Event
from services.bus.outbox import event_send
from services.bus.registry import handler_for

_CHUNK = 500


def log_end() -> int:
    """The newest ``seq`` stored now (0 for an empty log)."""
    return Event.objects.aggregate(last=Max("seq"))["last"] or 0


def events_replay(*, service: str, event_type: str, through_seq: int) -> int:
    """Send every delivered-mode event of ``event_type`` up to ``through_seq`` to ``service``,
    in ``seq`` order; returns how many. Raises ``NotSubscribed`` if its code cannot handle
    the type, and what the broker raises."""
    handler_for(service, event_type)
    rows = Event.objects.filter(
        type=event_type, mode=Event.Mode.EVENTS, seq__lte=through_seq
    ).order_by("seq")
    sent = 0
    for event in rows.iterator(chunk_size=_CHUNK):
        event_send(event, service=service)
        sent += 1
    return sent
