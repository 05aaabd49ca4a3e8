"""The settings that decide how the bus behaves, as the console lists them."""

from __future__ import annotations

from django.conf import settings
from kombu.utils.url import maybe_sanitize_url

from checkout_site.celery import app
from checkout_site.console.levers import levers_state
from services.bus.registry import queues
from services.bus.tasks import deliver, deliver_once


def broker_settings() -> list[tuple[str, str, str]]:
    """The settings that decide how the bus behaves: (name, value, why it matters)."""
    conf = app.conf
    options = conf.broker_transport_options or {}
    declared = {q.name: q for q in app.amqp.queues.values()}

    def durable(name: str) -> str:
        queue = declared.get(name)
        return "durable" if queue is None or queue.durable else "transient"

    return [
        ("broker", maybe_sanitize_url(conf.broker_url), "where events wait; password hidden"),
        (
            "queues",
            ", ".join(f"{q} ({durable(q)})" for q in queues()),
            "one per subscribing service, named after it",
        ),
        (
            "task_acks_late",
            str(deliver.acks_late),
            "a message is acknowledged after its handler committed: at least once",
        ),
        (
            "task_reject_on_worker_lost",
            str(deliver.reject_on_worker_lost),
            "a message whose worker died goes back to the queue",
        ),
        (
            "delivery now",
            ", ".join(f"{name} {value}" for name, value in levers_state()["delivery"].items()),
            "the delivery lever, per service (console home)",
        ),
        (
            "at-most-once task",
            f"{deliver_once.name}: acks_late {deliver_once.acks_late}",
            "a service switched to at-most-once is sent this task instead: acknowledged when a "
            "worker takes it, so a worker that dies loses it",
        ),
        (
            "worker_prefetch_multiplier",
            str(conf.worker_prefetch_multiplier),
            "messages a worker process may hold before it acknowledges",
        ),
        (
            "visibility_timeout",
            f"{options.get('visibility_timeout', 3600)} s",
            "Redis gives an unacknowledged message back after this long",
        ),
        (
            "retry policy",
            f"{settings.DELIVERY_MAX_RETRIES} retries, backoff 0.2 s doubling to 10 s, jitter",
            "then the event is stored as a dead letter",
        ),
        (
            "outbox relay",
            f"after {settings.OUTBOX_RELAY_AFTER_SECONDS} s",
            "publishes events the broker did not take at commit time",
        ),
        (
            "event log retention",
            "kept forever",
            "the log is the truth: statuses and projections are rebuilt from it",
        ),
        (
            "task events",
            "on" if conf.worker_send_task_events else "off (CELERY_SEND_EVENTS=true)",
            "what Flower needs to follow the workers",
        ),
    ]
