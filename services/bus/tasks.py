"""The Celery tasks of the bus: deliver an event to one service. They own only the retries.

Two tasks with one body, because Celery fixes when a message is acknowledged per task, not per
message: ``bus.deliver`` acknowledges after the handler committed and hands a message whose
worker died back to the broker (at least once); ``bus.deliver_once`` acknowledges when a worker
takes it, so a worker that dies loses it (at most once). ``delivery_task`` picks one from the
service's policy when an event is sent.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from pydantic import ValidationError

from services.bus import hooks
from services.bus.consumer import event_consume
from services.bus.dead_letters import dead_letter_store
from services.bus.deliveries import delivery_failed
from services.bus.registry import NotSubscribed
from services.bus.schemas import UnknownEventType

log = logging.getLogger(__name__)


def _backoff(retries: int) -> float:
    """0.2 s, 0.4 s, 0.8 s ... capped at 10 s, with jitter so retries of a burst spread out."""
    return min(0.2 * 2**retries, 10.0) * random.uniform(0.75, 1.25)


def _give_up(service: str, envelope: Any, exc: BaseException, attempts: int) -> str:
    with transaction.atomic():
        dead_letter_store(service=service, envelope=envelope, error=exc, attempts=attempts)
        delivery_failed(envelope=envelope, service=service, error=exc, attempt=attempts, dead=True)
    return "dead-lettered"


def _deliver(task: Any, service: str, envelope: dict[str, Any], injected: str) -> str:
    attempts = task.request.retries + 1
    try:
        return event_consume(
            service=service, data=envelope, attempt=attempts, injected=injected
        ).value
    except (ValidationError, UnknownEventType, NotSubscribed) as exc:
        # No retry can make a malformed or unknown event valid: park it at once.
        return _give_up(service, envelope, exc, attempts)
    except Exception as exc:
        if task.request.retries >= settings.DELIVERY_MAX_RETRIES:
            log.exception(
                "%s gave up on %s after %s attempts",
                service,
                envelope.get("type"),
                attempts,
            )
            return _give_up(service, envelope, exc, attempts)
        log.warning(
            "%s failed on %s (attempt %s): %s",
            service,
            envelope.get("type"),
            attempts,
            exc,
        )
        delivery_failed(envelope=envelope, service=service, error=exc, attempt=attempts, dead=False)
        raise task.retry(exc=exc, countdown=_backoff(task.request.retries)) from exc


# max_retries=None: the limit is DELIVERY_MAX_RETRIES, checked above so the last failure is
# dead-lettered. Celery's own default (3) would raise first and drop the event unrecorded.
@shared_task(
    bind=True,
    name="bus.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def deliver(self: Any, service: str, envelope: dict[str, Any], injected: str = "") -> str:
    """``injected`` names the fault that sent this copy (duplicate delivery), for the record."""
    return _deliver(self, service, envelope, injected)


@shared_task(
    bind=True,
    name="bus.deliver_once",
    acks_late=False,
    reject_on_worker_lost=False,
    max_retries=None,
)
def deliver_once(self: Any, service: str, envelope: dict[str, Any], injected: str = "") -> str:
    """``deliver``, acknowledged on receipt. A failure is still retried (the retry is a new
    message); only a message whose worker dies is lost."""
    return _deliver(self, service, envelope, injected)


def delivery_task(service: str, *, order_id: int | None = None) -> Task:
    """The task that carries an event (of ``order_id``) to ``service`` now, by its policy's
    acknowledgement."""
    early = hooks.policy_for(service, order_id=order_id).ack == "early"
    return deliver_once if early else deliver
