"""Where a stored event goes next.

``event_emit`` records an event in the caller's transaction. After that transaction commits,
``outbox_flush`` hands the event to the broker, one message per subscribing service's queue,
and the hooks registered for committed events run (the live pages push it to browsers). If the
broker cannot take it, the row stays unpublished and the relay (services/bus/relay.py) sends it
later. An event of a rolled-back change is never sent.

What the broker took is marked ``published_at`` by a thread of the process, every
``_MARK_EVERY_S`` for all the flushes since (``_PublishedMarks``), not by a write of its own
after each commit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Task
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import BatchPublishError, OperationalError
from kombu.utils.uuid import uuid

from services.bus import hooks
from services.bus.models import Event
from services.bus.registry import subscribers_of
from services.bus.rows import row_insert
from services.bus.schemas import Envelope, Payload
from services.bus.tracing import trace_carrier

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
    event = row_insert(
        Event(
            type=payload.type_name(),
            version=payload.version,
            order_id=order_id,
            occurred_at=timezone.now(),
            producer=payload.producer,
            causation_id=causation_id,
            payload=payload.model_dump(mode="json"),
            metadata=trace_carrier(),
            mode=Event.Mode.EVENTS if deliver else Event.Mode.SYNC,
            published_at=None if deliver else timezone.now(),
        )
    )
    transaction.on_commit(lambda: _committed(event))
    return event


def _committed(event: Event) -> None:
    if event.mode == Event.Mode.EVENTS:
        outbox_flush([event])
    hooks.committed_run([event])


def outbox_flush(events: Iterable[Event]) -> list[int]:
    """Send committed events to every subscribing queue; returns the seqs the broker took.

    One producer, and so one broker connection, carries the whole batch; each event's messages
    go in one round trip where the broker allows it (``_messages_publish``). An event no service
    is subscribed to (by default OrderConfirmed and NotificationSent) is sent to no one: it
    needs no broker, and counts as sent.
    """
    sent: list[int] = []
    outgoing: list[tuple[Event, tuple[str, ...]]] = []
    for event in events:
        receivers = _receivers(event)
        if receivers:
            outgoing.append((event, receivers))
        else:
            sent.append(event.seq)
    if outgoing:
        with _producer() as producer:
            for event, receivers in outgoing:
                envelope = event.envelope()
                messages = [m for s in receivers for m in _messages(event, s, envelope)]
                try:
                    _messages_publish(producer, messages)
                except (OperationalError, OSError) as exc:
                    log.warning("broker unreachable, seq %s left for the relay: %s", event.seq, exc)
                    continue
                sent.append(event.seq)
        sent.sort()
    if sent:
        _published_marks.add(sent)
    return sent


def _receivers(event: Event) -> tuple[str, ...]:
    """Who is subscribed to the event's type now, and who is for its order only."""
    every = subscribers_of(event.type)
    own = hooks.order_subscribers(event.type, event.order_id)
    return every + tuple(s for s in own if s not in every) if own else every


def event_send(event: Event, *, service: str) -> None:
    """Put one stored event on ``service``'s queue, with the copies the hooks ask for; raises
    what the broker raises. A replay's send (services/bus/replay.py)."""
    with _producer() as producer:
        _messages_publish(producer, _messages(event, service, event.envelope()))


def _producer() -> Any:
    from services.bus.tasks import deliver

    return deliver.app.producer_or_acquire()


@dataclass(frozen=True)
class _Message:
    task: Task
    service: str
    body: Any  # Celery's task message: headers, properties, body, sent event
    headers: dict[str, Any]


def _messages(event: Event, service: str, envelope: dict[str, Any]) -> list[_Message]:
    """The task messages that carry ``event`` to ``service``: one, and the copies the hooks
    ask for (a duplicate-delivery fault)."""
    from services.bus.tasks import delivery_task

    task = delivery_task(service, order_id=event.order_id)
    labels = ["", *hooks.copies_for(service=service, order_id=event.order_id)]
    return [
        _Message(
            task=task,
            service=service,
            body=task.app.amqp.create_task_message(
                uuid(),
                task.name,
                (service, envelope),
                {"injected": label} if label else {},
                # Celery would otherwise put a repr of the whole envelope, payment token
                # included, in the message headers: a quarter of a publish's CPU.
                argsrepr=f"({service!r}, {event.type} seq {event.seq})",
                kwargsrepr=f"{{'injected': {label!r}}}" if label else "{}",
                ignore_result=True,
            ),
            headers=event.metadata,
        )
        for label in labels
    ]


def _messages_publish(producer: Any, messages: list[_Message]) -> None:
    """Publish ``messages`` on ``producer``; raises what the broker raises.

    On Redis they go as one pipeline, one round trip, where one ``apply_async`` each took a
    round trip, a new client object and a result object apiece (the results this project
    never reads). A pipeline that fails has an uncertain outcome: each message is then sent
    again on its own, with the publish retry, and a consumer's inbox drops a copy that had got
    through. Other brokers (RabbitMQ) publish each message at once, as before.
    """
    # As apply_async does: a transport's own error (redis-py's) is raised as kombu's.
    with producer.connection._reraise_as_library_errors():
        try:
            with producer.batch():
                for message in messages:
                    _message_send(producer, message)
        except BatchPublishError as exc:
            log.info("publish pipeline failed (%s); sending one by one", exc.__cause__ or exc)
            for message in messages:
                _message_send(producer, message)


def _message_send(producer: Any, message: _Message) -> None:
    message.task.app.amqp.send_task_message(
        producer,
        message.task.name,
        message.body,
        queue=message.service,
        retry=True,
        retry_policy=_PUBLISH_RETRY,
        headers=message.headers,
    )


# Long enough to gather the flushes of a busy process into one write, short against the relay's
# wait (OUTBOX_RELAY_AFTER_SECONDS, 2 s) before it sends an unmarked event itself.
_MARK_EVERY_S = 0.1
# A marks thread with nothing to write for this long closes its database connection.
_IDLE_CLOSE_S = 1.0


class _PublishedMarks:
    """Writes ``published_at`` for the events the broker took, in one UPDATE per interval.

    Marking each flush in a write transaction of its own, right after the commit that stored
    the event, took the database's write lock twice per event; on SQLite, with one writer at a
    time, that wait was a tenth of every delivery. A mark is only a note for the relay and the
    console: if the process dies before writing it, the relay sends the event again and the
    consumers' inboxes drop the copy. ``published_at`` is when the last of a batch was taken: at
    most ``_MARK_EVERY_S`` late, never before the event was stored.
    """

    def __init__(self) -> None:
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # Also run in a forked child: it has none of the parent's threads, and the lock may have
        # been held when the parent forked.
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()  # set while the thread holds no database connection
        self._idle.set()
        self._seqs: list[int] = []
        self._last_at: datetime | None = None
        self._pid = 0

    def add(self, seqs: list[int]) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="outbox-marks", daemon=True).start()
            self._seqs.extend(seqs)
            self._last_at = timezone.now()
        self._wake.set()

    def _take(self) -> tuple[list[int], datetime | None]:
        with self._lock:
            taken = self._seqs, self._last_at
            self._seqs, self._last_at = [], None
            self._wake.clear()
            return taken

    def _run(self) -> None:
        while True:
            if not self._wake.wait(timeout=_IDLE_CLOSE_S):
                # Idle: give the database its connection back until there is work again.
                connection.close()
                self._idle.set()
                self._wake.wait()
            self._idle.clear()
            time.sleep(_MARK_EVERY_S)
            seqs, last_at = self._take()
            if seqs:
                self._write(seqs, last_at or timezone.now())

    @staticmethod
    def _write(seqs: list[int], at: datetime) -> None:
        try:
            Event.objects.filter(seq__in=seqs, published_at__isnull=True).update(published_at=at)
        except Exception:
            # The events stay unmarked and the relay sends them again: a copy, never a loss.
            log.warning("could not mark %s events published", len(seqs), exc_info=True)
            connection.close()


_published_marks = _PublishedMarks()


def published_marks_idle(timeout: float = 5.0) -> bool:
    """Wait until this process's marks thread has written everything and closed its database
    connection (a test session about to drop its database); False if it is still busy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _published_marks._seqs and _published_marks._idle.wait(0.05):
            return True
    return False


def published_marks_write() -> None:
    """Write the marks waiting in this process now (a process about to exit, a test)."""
    seqs, last_at = _published_marks._take()
    if seqs:
        _published_marks._write(seqs, last_at or timezone.now())


def published_mark(seqs: list[int]) -> None:
    """Note that the broker took these events: the marks thread writes their ``published_at``."""
    _published_marks.add(seqs)


__all__ = ["Envelope", "event_emit", "event_send", "outbox_flush", "published_mark"]
