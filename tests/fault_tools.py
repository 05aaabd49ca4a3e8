"""Tools of the fault tests: extra workers to kill, the relay as a process, waiting for the end.

The session's worker is paused (it stops consuming, by Celery's own remote control) while a
fault test runs its own workers, so kills hit only processes the test started, and resumed
afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from checkout_site import processes
from checkout_site.console.consistency import ConsistencyReport, consistency_check
from orders.models import TERMINAL_STATUSES, Order
from services.bus.registry import queues
from tests.conftest import Worker, stack_env, wait_for

SESSION_WORKER = "checkout-test"


@contextlib.contextmanager
def session_worker_paused() -> Iterator[None]:
    from checkout_site.celery import app

    destination = [f"{SESSION_WORKER}@{socket.gethostname()}"]
    # A connection of its own, not the pool's: one pooled before a Redis restart is dead.
    with app.connection_for_write() as conn:
        for queue in queues():
            app.control.cancel_consumer(
                queue, destination=destination, reply=True, timeout=5, connection=conn
            )
    try:
        yield
    finally:
        with app.connection_for_write() as conn:
            for queue in queues():
                app.control.add_consumer(
                    queue, destination=destination, reply=True, timeout=5, connection=conn
                )


class Relay:
    """``manage.py relay`` as its own process: the outbox relay and the reconciler."""

    def __init__(self, **env: str) -> None:
        self.env = env
        self.log = processes.log_file("relay")
        self._process: processes.Process | None = None

    def start(self) -> Relay:
        self._process = processes.relay(env=stack_env(**self.env), interval=0.2, log=self.log)
        self._process.start()
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=10)


def children_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def kill9(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def worker_kill_all(worker: Worker) -> None:
    """kill -9 the worker's main process and its pool processes, as a host crash would."""
    assert worker.process is not None
    pool = children_of(worker.process.pid)
    kill9(worker.process.pid)
    for pid in pool:
        kill9(pid)
    worker.process.wait()


def orders_terminal(order_ids: Iterable[int]) -> bool:
    ids = list(order_ids)
    return Order.objects.filter(pk__in=ids, status__in=TERMINAL_STATUSES).count() == len(ids)


def wait_books_clean(order_ids: Iterable[int], timeout: float) -> ConsistencyReport:
    """Wait until every order is terminal and the books show nothing unfinished or wrong."""
    ids = list(order_ids)
    wait_for(lambda: orders_terminal(ids), timeout=timeout, interval=0.5)
    report: list[ConsistencyReport] = []

    def clean() -> bool:
        report[:] = [consistency_check(deadline_s=0)]
        return report[0].clean

    try:
        wait_for(clean, timeout=30, interval=0.5)
    except AssertionError:
        raise AssertionError("\n".join(map(str, report[0].violations))) from None
    return report[0]


def log_text(*paths: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in paths if p.exists())
