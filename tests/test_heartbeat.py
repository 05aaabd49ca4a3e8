"""The worker's heartbeat thread and the pool's forks (checkout_site/console/heartbeat.py).

A pool process forked while the heartbeat's SQLite connection was writing kept that lock with
no thread to release it, and every write it tried then failed as "database is locked": an
order stuck after a crash fault. A fork now waits for a beat to finish and close its connection.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from checkout_site.console import heartbeat
from checkout_site.console.models import WorkerBeat


def test_a_fork_waits_for_a_beat_in_progress():
    holding, released = threading.Event(), []

    def beat() -> None:
        with heartbeat._beating:
            holding.set()
            time.sleep(0.3)
            released.append(time.monotonic())

    thread = threading.Thread(target=beat)
    thread.start()
    holding.wait(5)
    pid = os.fork()
    if pid == 0:
        # The child's copy of the lock is free: its own beats, if any, could run.
        os._exit(0 if heartbeat._beating.acquire(blocking=False) else 1)
    forked_at = time.monotonic()
    thread.join()
    _, status = os.waitpid(pid, 0)

    assert released and forked_at >= released[0], "the fork ran while a beat held the database"
    assert os.waitstatus_to_exitcode(status) == 0
    assert heartbeat._beating.acquire(blocking=False), "the parent's lock is free again"
    heartbeat._beating.release()


@pytest.mark.django_db(transaction=True)
def test_a_beat_writes_its_row_and_leaves_no_connection_open(monkeypatch):
    from django.db import connection

    class Consumer:
        hostname = "beat-test@host"
        task_consumer = None

    seen: list[bool] = []
    monkeypatch.setattr(heartbeat, "BEAT_EVERY_S", 0.01)

    def watched() -> None:
        heartbeat._stop.clear()
        original = WorkerBeat.objects.update_or_create

        def once(**kwargs):
            result = original(**kwargs)
            heartbeat._stop.set()
            return result

        monkeypatch.setattr(WorkerBeat.objects, "update_or_create", once)
        heartbeat._beat(Consumer())
        seen.append(connection.connection is None)

    thread = threading.Thread(target=watched)
    thread.start()
    thread.join(10)

    assert WorkerBeat.objects.filter(worker="beat-test@host").exists()
    assert seen == [True], "the beat's thread still holds a database connection"
