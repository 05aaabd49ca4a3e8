"""The reconciler: sends again every event a subscribing service has not handled in time.

The outbox relay covers events that never reached the broker. This covers the ones the broker
took and then lost: a Redis restart empties its memory, and a message a killed worker had taken
waits out the visibility timeout. Every subscribing service writes the ids of the events it has
handled in its inbox, in the same transaction as the effect; an event older than the deadline,
of a type the service is subscribed to now (services/bus/registry.py), with no row in its inbox
(nor a handled delivery, for a service running without its inbox) is sent to it again.
Consumers are idempotent, so an event that was only slow, not lost, is then handled once and
its copy skipped.

Not sent again: events of the request-response checkout (``Order.mode == "sync"``, stored for
the pages only, never delivered), events not yet published (the relay's job), and events a
service dead-lettered (parked until someone redrives them from the admin).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from services.bus.models import DeadLetter, Delivery, Event
from services.bus.registry import subscribed_events, subscribers, subscriptions
from services.bus.schemas import mask_token

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    sent: list[tuple[str, int]] = field(default_factory=list)  # (service, seq)
    failed: int = 0
    deferred: int = 0
    redacted: int = 0


@dataclass
class Reconciler:
    """One reconciler per relay process; it remembers what it re-sent, to back off on it.

    An event re-sent but still not handled (a long queue, a service stopped on purpose) is sent
    again only after twice the previous wait, so an overloaded service is not flooded with
    copies of what it already has waiting.
    """

    after_s: float | None = None
    horizon_s: float | None = None
    _resent: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)

    def run(self, *, limit: int = 500) -> ReconcileReport:
        now = time.monotonic()
        due = events_unhandled(after_s=self.after_s, horizon_s=self.horizon_s, limit=limit)
        pending = {(service, event.seq) for service, event in due}
        # Forget what got handled since, so the memory stays as small as the backlog.
        self._resent = {k: v for k, v in self._resent.items() if k in pending}
        report = ReconcileReport()
        wait = _after_s(self.after_s)
        backed_up = _backed_up({service for service, _ in due})
        for service, event in due:
            if service in backed_up:
                # Its queue is long: what it has not handled is most likely waiting there, and
                # copies would only make the queue longer. Lost events are sent once it drains.
                report.deferred += 1
                continue
            key = (service, event.seq)
            last, backoff = self._resent.get(key, (0.0, wait / 2))
            if last and now - last < backoff:
                continue
            if _send(service, event):
                report.sent.append(key)
                self._resent[key] = (now, min(backoff * 2, 600.0))
            else:
                report.failed += 1
        report.redacted = tokens_redact()
        return report


def events_reconcile(
    *, after_s: float | None = None, horizon_s: float | None = None, limit: int = 500
) -> ReconcileReport:
    """One pass without memory: send every overdue unhandled event to its service once."""
    return Reconciler(after_s=after_s, horizon_s=horizon_s).run(limit=limit)


def events_unhandled(
    *, after_s: float | None = None, horizon_s: float | None = None, limit: int = 500
) -> list[tuple[str, Event]]:
    """(service, event) pairs: published more than ``after_s`` ago, not in that service's inbox."""
    now = timezone.now()
    horizon = settings.RECONCILE_HORIZON_SECONDS if horizon_s is None else horizon_s
    base = Event.objects.filter(
        published_at__isnull=False,
        occurred_at__lte=now - timedelta(seconds=_after_s(after_s)),
        occurred_at__gte=now - timedelta(seconds=horizon),
        mode=Event.Mode.EVENTS,
    )
    found: list[tuple[str, Event]] = []
    for subscriber in subscribers().values():
        handled = subscriber.inbox.objects.filter(event_id=OuterRef("event_id"))
        recorded = _handled_record(subscriber.name)
        parked = DeadLetter.objects.filter(
            service=subscriber.name, event_id=OuterRef("event_id"), redriven_at__isnull=True
        )
        rows = (
            base.filter(subscribed_events(subscriber.name))
            .exclude(Exists(handled))
            .exclude(Exists(recorded))
            .exclude(Exists(parked))
            .order_by("seq")[:limit]
        )
        found.extend((subscriber.name, event) for event in rows)
    found.sort(key=lambda pair: pair[1].seq)
    return found


def tokens_redact(*, limit: int = 500) -> int:
    """Mask the payment token of every OrderCreated that all its subscribers have handled.

    The token is kept whole only while a service may still need it: the payment service
    charges with it, and until every subscriber has the event it may have to be sent again.
    After that the log keeps the masked form, the same one the pages show. A request-response
    order's token is masked as soon as a pass sees it: its payment was taken in the request.
    """
    all_handled = Q(mode=Event.Mode.EVENTS, published_at__isnull=False)
    for subscriber in subscribers().values():
        if "OrderCreated" in subscriptions()[subscriber.name]:
            all_handled &= Q(
                Exists(subscriber.inbox.objects.filter(event_id=OuterRef("event_id")))
            ) | Q(Exists(_handled_record(subscriber.name)))
    # A request-response order's event is never delivered: nothing needs its token after commit.
    candidates = (
        Event.objects.filter(type="OrderCreated")
        .filter(all_handled | Q(mode=Event.Mode.SYNC))
        .exclude(payload__paymentToken__startswith="tok_****")
    )
    count = 0
    for event in candidates.order_by("seq")[:limit]:
        token = event.payload.get("paymentToken")
        if not isinstance(token, str):
            continue
        payload = {**event.payload, "paymentToken": mask_token(token)}
        count += Event.objects.filter(pk=event.pk).update(payload=payload)
    return count


def _handled_record(service: str) -> QuerySet[Delivery]:
    """The record of a handled delivery: all a service delivered to without its inbox (the
    idempotency lever) leaves behind."""
    return Delivery.objects.filter(
        service=service, event_id=OuterRef("event_id"), status=Delivery.Status.HANDLED
    )


def _backed_up(services: set[str]) -> set[str]:
    """The services whose queue holds more than RECONCILE_MAX_QUEUE messages."""
    if not services:
        return set()
    from services.bus.broker import queue_depths

    try:
        depths = queue_depths()
    except Exception as exc:  # the broker is down: nothing can be sent this pass anyway
        log.warning("queue depths unknown, reconciling skipped: %s", exc)
        return services
    return {s for s in services if depths.get(s, 0) > settings.RECONCILE_MAX_QUEUE}


def _after_s(after_s: float | None) -> float:
    return settings.RECONCILE_AFTER_SECONDS if after_s is None else after_s


def _send(service: str, event: Event) -> bool:
    from kombu.exceptions import OperationalError

    from services.bus.tasks import delivery_task

    try:
        delivery_task(service, order_id=event.order_id).apply_async(
            args=(service, event.envelope()), queue=service, retry=False
        )
    except (OperationalError, OSError) as exc:
        log.warning("broker unreachable, %s for %s waits: %s", event.seq, service, exc)
        return False
    log.info("re-sent %s #%s to %s", event.type, event.seq, service)
    return True
