"""Fixtures for the console's tests: a daphne server on the test database, a signed-in staff
browser page, and a clean slate of services and faults after each test.

Import the ones a module uses: ``from tests.console_fixtures import console_server, ...``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkout_site.embedded_redis import free_port
from tests.browser_stack import CHROMIUM_ARGS
from tests.conftest import ROOT, stack_env

STAFF_PASSWORD = "console-test-password"


class ConsoleServer:
    """daphne serving the whole site (pages, sockets, static files) on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="console-daphne-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ConsoleServer:
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
        env = stack_env(DJANGO_DEBUG="true")
        # The test process allows sync ORM calls under Playwright's loop; the server must not.
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*cmd, "checkout_site.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"daphne did not listen:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def console_server(django_db_setup: None) -> Iterator[ConsoleServer]:
    server = ConsoleServer().start()
    yield server
    server.stop()


@pytest.fixture
def services_restored(transactional_db: None) -> Iterator[None]:
    """Every service consuming and no fault on, after the test, whatever it did."""
    yield
    from checkout_site.console.control import services_start_all
    from checkout_site.console.faults import CACHE_SECONDS
    from checkout_site.console.models import Fault

    had_faults = Fault.objects.exists()
    Fault.objects.all().delete()
    services_start_all()
    if had_faults:
        # Workers cache the fault table this long; the next test must not meet a stale fault.
        time.sleep(CACHE_SECONDS + 0.3)


@pytest.fixture
def staff_user(transactional_db: None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        "operator", "operator@example.com", STAFF_PASSWORD, is_staff=True
    )


# Module scope, as in tests/browser_stack.py: while Playwright runs, its event loop lives in this
# thread, and every later test that calls async_to_sync (the socket tests) would fail.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still plain synchronous code, so Django's async guard must stand aside here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def staff_page(chromium: Any, console_server: ConsoleServer, staff_user: Any) -> Iterator[Any]:
    """A browser page signed in as staff through /admin/login/, with page errors collected."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"{console_server.url}/admin/login/?next=/console/")
    page.fill("#id_username", staff_user.username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/console/")
    yield page
    context.close()
