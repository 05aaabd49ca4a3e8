"""Workers' heartbeats: which queues each live worker consumes, written every couple of seconds.

The console's stop and start say what the operator wants; a heartbeat says what runs. A worker
writes its row from a thread of its main process (not the pool, which may be busy or dead) and
removes it when it shuts down; one killed -9 just stops beating. ``/metrics`` and the console
count a queue's live consumers from these rows, with no broadcast to wait for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import Counter
from datetime import timedelta
from typing import Any

from celery import signals
from django.db import DatabaseError, connection
from django.utils import timezone

from checkout_site.console.models import WorkerBeat

log = logging.getLogger(__name__)

BEAT_EVERY_S = 2.0
# Three missed beats and a worker counts as gone.
ALIVE_WITHIN_S = 3 * BEAT_EVERY_S

_stop = threading.Event()

# The worker's main process forks a pool process whenever one dies (the console's crash fault
# does that on purpose). SQLite keeps its locks' bookkeeping in the process's memory, which a
# fork copies: a child forked while this thread's connection was in a write kept that lock
# with no thread to release it, and each write it tried waited out the busy timeout ("database
# is locked"), seen as an order stuck after a crash. So a beat holds this lock while it has a
# connection, closes the connection before letting go, and a fork waits for it.
_beating = threading.Lock()
os.register_at_fork(
    before=_beating.acquire, after_in_parent=_beating.release, after_in_child=_beating.release
)


def workers_alive() -> dict[str, int]:
    """How many live workers consume each queue (a queue no live worker consumes is absent)."""
    since = timezone.now() - timedelta(seconds=ALIVE_WITHIN_S)
    alive: Counter[str] = Counter()
    for queues in WorkerBeat.objects.filter(beat_at__gte=since).values_list("queues", flat=True):
        alive.update(queues)
    return dict(alive)


def _beat(consumer: Any) -> None:
    name = consumer.hostname
    while not _stop.wait(BEAT_EVERY_S):
        queues = (
            sorted(q.name for q in consumer.task_consumer.queues) if consumer.task_consumer else []
        )
        with _beating:
            try:
                WorkerBeat.objects.update_or_create(
                    worker=name, defaults={"queues": queues, "beat_at": timezone.now()}
                )
            except DatabaseError as exc:
                log.warning("heartbeat not written: %s", exc)
            finally:
                connection.close()


@signals.worker_ready.connect
def _start_beating(sender: Any, **kwargs: Any) -> None:
    _stop.clear()
    threading.Thread(target=_beat, args=(sender,), name="heartbeat", daemon=True).start()


@signals.worker_shutdown.connect
def _stop_beating(sender: Any, **kwargs: Any) -> None:
    _stop.set()
    # If the database is away, the row goes stale instead.
    with contextlib.suppress(DatabaseError):
        WorkerBeat.objects.filter(worker=getattr(sender, "hostname", "")).delete()
