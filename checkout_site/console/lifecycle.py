"""Selectors for the console: how each stored event travelled to each subscribing service."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Q

from services.bus.models import Delivery, Event
from services.bus.registry import subscribers_of
from services.bus.schemas import mask_payload

PAGE_SIZE = 50


def _problem_seqs() -> Any:
    troubled = Q(retries__gt=0) | Q(duplicates__gt=0) | ~Q(status=Delivery.Status.HANDLED)
    return Delivery.objects.filter(troubled).values("seq")


def events_lifecycle(
    *,
    order_id: int | None = None,
    event_type: str = "",
    troubled_only: bool = False,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest events first, each with its delivery to every subscriber; and the next page's seq."""
    events = Event.objects.order_by("-seq")
    if order_id is not None:
        events = events.filter(order_id=order_id)
    if event_type:
        events = events.filter(type=event_type)
    if troubled_only:
        events = events.filter(seq__in=_problem_seqs())
    if before is not None:
        events = events.filter(seq__lt=before)
    rows = list(events[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    by_event: dict[Any, dict[str, Delivery]] = defaultdict(dict)
    for delivery in Delivery.objects.filter(event_id__in=[r.event_id for r in rows]):
        by_event[delivery.event_id][delivery.service] = delivery
    out = [_event_view(row, by_event[row.event_id]) for row in rows]
    return out, (rows[-1].seq if more and rows else None)


def _event_view(event: Event, deliveries: dict[str, Delivery]) -> dict[str, Any]:
    """The contract's envelope (payload masked), and how the bus carried it."""
    sync = event.mode == Event.Mode.SYNC
    envelope = event.envelope()
    return {
        **envelope,
        "payload": mask_payload(envelope["payload"]),
        "publishedAt": event.published_at.isoformat() if event.published_at else None,
        "sync": sync,
        "deliveries": [
            _delivery_view(service, deliveries.get(service), event, sync)
            for service in subscribers_of(event.type)
        ],
    }


def _delivery_view(
    service: str, delivery: Delivery | None, event: Event, sync: bool
) -> dict[str, Any]:
    if delivery is None:
        if sync:
            state = "not sent"  # the request-response checkout records events for the log only
        elif event.published_at is None:
            state = "unpublished"
        else:
            state = "waiting"
        return {"service": service, "state": state}
    return {
        "service": service,
        "state": delivery.status,
        "attempts": delivery.attempts,
        "retries": delivery.retries,
        "duplicates": delivery.duplicates,
        "error": delivery.error,
        "faults": delivery.faults,
        "receivedAt": delivery.received_at.isoformat(),
        "settledAt": delivery.settled_at.isoformat(),
        "waitMs": _round(delivery.wait_ms),
        "handlerMs": _round(delivery.handler_ms),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
