"""Shared fixtures: the real stack the tests run on (Redis and the broker: tests/stack_plugin.py).

The ``worker`` fixture runs a real Celery worker on every service queue against the test database.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from checkout_site import processes
from checkout_site.processes import service_queues
from tests.netproxy import TcpProxy
from tests.stack_plugin import _state

ROOT = Path(__file__).resolve().parent.parent

# daphne and headless Chromium for the browser tests (``page``, ``daphne``); the session's
# processes' logs shown with a failing test.
pytest_plugins = ["tests.session_logs", "tests.browser_stack"]

# WhiteNoise warns, for every handler a test client builds, that STATIC_ROOT is missing, as it is
# in a fresh clone before any collectstatic; the suite's pages find their files (DEBUG) without it.
Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)

# Fuzzing: a quick run in ``make test``, a deep one in CI (HYPOTHESIS_PROFILE=ci, .ci/run). A test
# that sets its own number of examples keeps it under either.
hypothesis_settings.register_profile(
    "dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile(
    "ci", parent=hypothesis_settings.get_profile("dev"), max_examples=400
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def broker_proxy() -> TcpProxy:
    return _state["proxy"]


@pytest.fixture(scope="session")
def embedded_redis() -> Any:
    """The session's own Redis, or None when REDIS_URL names a shared one."""
    return _state.get("redis")


def database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def stack_env(**extra: str) -> dict[str, str]:
    """The environment for a process of the stack: the test database, the real broker."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=_state["broker"],
        EMAIL_URL=f"file:///{_state['mail_dir']}",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


class Worker:
    """A real Celery worker process consuming every service queue (checkout_site/processes.py)."""

    def __init__(self, name: str, queues: str | None = None) -> None:
        self.name = name
        self.queues = queues or ",".join(service_queues())
        self.log = processes.log_file(name)
        self._process: processes.Process | None = None
        self.paused = False

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process.popen if self._process else None

    def start(self, timeout: float = 30.0, **env: str) -> Worker:
        self._process = processes.worker(
            self.name,
            env=stack_env(**env),
            queues=self.queues.split(","),
            loglevel="info",
            options=["-P", "prefork", "--without-gossip", "--without-mingle"],
            log=self.log,
        )
        self._process.start().wait(timeout)
        return self

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def resume(self) -> None:
        """Consume every queue again (starting the process if a test left it dead)."""
        self.paused = False
        if self.process is None or self.process.poll() is not None:
            self.start()
            return
        if not self._control("add_consumer"):
            self.stop()
            self.start()

    def pause(self, timeout: float = 15.0) -> None:
        """Stop consuming and wait until nothing is running or reserved.

        Between stack tests the session's worker must not handle what another test commits: its
        transaction would race that test's flush of the database (on PostgreSQL, a deadlock).
        A worker that does not answer is stopped; ``resume`` starts it again.
        """
        self.paused = True
        if self.process is None or self.process.poll() is not None:
            return
        if not self._control("cancel_consumer"):
            self.stop()
            return
        from checkout_site.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with app.connection_for_write() as conn:
                inspect = app.control.inspect(
                    destination=[self.hostname], timeout=1.0, connection=conn
                )
                active, reserved = inspect.active() or {}, inspect.reserved() or {}
                scheduled = inspect.scheduled() or {}
            if scheduled.get(self.hostname):
                break  # retries waiting on a countdown: a stop hands them back to be purged
            busy = active.get(self.hostname), reserved.get(self.hostname)
            if self.hostname in active and not any(busy):
                return
            time.sleep(0.05)
        self.stop()

    def _control(self, command: str) -> bool:
        from checkout_site.celery import app

        send = getattr(app.control, command)
        with app.connection_for_write() as conn:
            for queue in self.queues.split(","):
                replies = send(
                    queue, destination=[self.hostname], reply=True, timeout=2.0, connection=conn
                )
                if not replies:
                    return False
        return True

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()


def _flush_retrying_a_deadlock() -> None:
    """A test's flush retries when PostgreSQL picks it as a deadlock's victim.

    TRUNCATE locks every table in turn, and a reader still running from the test (a socket's
    catch-up, a straggling delivery) that joins two tables can hold one while it waits on the
    next: PostgreSQL aborts one of the two. The reader's statement ends either way; a second
    flush then finds the tables free. Without the retry, the rows stay for the next test.
    """
    from django.core.management.base import CommandError
    from django.test.testcases import TransactionTestCase

    flush = TransactionTestCase._fixture_teardown

    def teardown(self: TransactionTestCase) -> None:
        for attempt in range(3):
            try:
                return flush(self)
            except CommandError as exc:
                if "deadlock" not in str(exc.__cause__ or exc) or attempt == 2:
                    raise
                warnings.warn(f"flush retried after a deadlock: {exc.__cause__}", stacklevel=1)
                time.sleep(0.2)

    TransactionTestCase._fixture_teardown = teardown


_flush_retrying_a_deadlock()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """pytest-django's, and before it drops the test database, the outbox's marks thread lets go
    of its connection (PostgreSQL refuses to drop a database someone is connected to)."""
    yield
    from services.bus.outbox import published_marks_idle

    published_marks_idle()


@pytest.fixture(scope="session")
def worker(django_db_setup: None, django_db_blocker: Any) -> Iterator[Worker]:
    # Empty queues first: a worker that starts on messages earlier tests (or runs, on a shared
    # Redis) left would retry them, and its retries land in the first stack test's queues.
    _queues_purge()
    w = Worker("checkout-test").start()
    from tests.session_logs import session_log

    session_log("worker", w.log)
    _session_worker.append(w)
    yield w
    _session_worker.clear()
    w.stop()


# The session's worker once it runs; between stack tests it is paused.
_session_worker: list[Worker] = []


@pytest.fixture(autouse=True)
def _session_worker_stays_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a service broadcasts ``add_consumer`` to every worker on the broker, the paused
    session worker included (``services_restored`` does it after the stack has paused it). It
    would then take the messages of the tests that follow, write their events after their
    flush and race the flush itself. So a start while it is paused pauses it again, there and
    then; other workers keep the start."""
    from celery.app.control import Control

    add_consumer = Control.add_consumer

    def add_consumer_kept_from_the_paused(self: Control, *args: Any, **kwargs: Any) -> Any:
        replies = add_consumer(self, *args, **kwargs)
        if _session_worker and _session_worker[0].paused:
            _session_worker[0].pause()
        return replies

    monkeypatch.setattr(Control, "add_consumer", add_consumer_kept_from_the_paused)


@pytest.fixture
def stack(worker: Worker, transactional_db: None, broker_proxy: TcpProxy) -> Iterator[Worker]:
    """The real pipeline for one test: committed data, a live worker, empty queues."""
    _queues_purge()
    worker.resume()
    yield worker
    worker.pause()
    _queues_purge()


def _queues_purge() -> None:
    from checkout_site.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in service_queues():
            # A queue that was never declared has nothing to purge.
            with contextlib.suppress(Exception):
                channel.queue_purge(queue)
        if conn.transport.driver_type == "redis":
            # Messages a killed worker had taken wait in kombu's unacked hash, and a live worker
            # puts them back in their queue once the visibility timeout has passed: in a later
            # test, or a later run on a shared Redis.
            channel.client.delete(channel.unacked_key, channel.unacked_index_key)


@pytest.fixture
def mail_dir() -> Path:
    return Path(_state["mail_dir"])


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    assert value, f"condition not met within {timeout} s"
    return value


@pytest.fixture
def staff_client(db: None) -> Any:
    """An operator: staff with every permission the console's controls take, signed in on a
    client that enforces CSRF, with its csrftoken cookie set."""
    from django.test import Client

    from checkout_site.console.views import OPERATOR_PERMISSIONS
    from tests.helpers import permissions_grant, user_make

    client = Client(enforce_csrf_checks=True)
    operator = permissions_grant(user_make("operator", staff=True), OPERATOR_PERMISSIONS)
    client.force_login(operator)
    client.get("/console/")
    return client


@pytest.fixture
def customer(db: None) -> Any:
    from orders.models import Customer

    return Customer.objects.create(pk=123, name="Ada Lovelace", email="ada@example.com")


@pytest.fixture
def make_product(db: None) -> Callable[..., Any]:
    from decimal import Decimal

    from orders.models import Product
    from services.inventory.models import Stock

    def make(pk: int = 456, stock: int = 50, price: str = "89.00") -> Any:
        product = Product.objects.create(
            pk=pk, name=f"Product {pk}", price=Decimal(price), stock=stock
        )
        Stock.objects.create(product_id=pk, on_hand=stock, initial=stock)
        return product

    return make


@pytest.fixture
def product(make_product: Callable[..., Any]) -> Any:
    return make_product()


@pytest.fixture(autouse=True)
def _bus_caches_forgotten() -> Iterator[None]:
    """Each process caches the wanted service states, faults and levers for a second; tests start
    clean."""
    from checkout_site.console.control import services_state_forget
    from checkout_site.console.faults import faults_forget
    from checkout_site.console.levers import levers_forget
    from checkout_site.console.order_scope import reruns_forget

    services_state_forget()
    faults_forget()
    levers_forget()
    reruns_forget()
    yield
    services_state_forget()
    faults_forget()
    levers_forget()
    reruns_forget()
