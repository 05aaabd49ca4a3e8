"""Fixtures for browser tests: daphne serving the site on the test database, and headless Chromium.

Loaded for every test module through ``pytest_plugins`` in tests/conftest.py: ask for ``page``.
Daphne runs as a subprocess with the same environment as the worker (``stack_env``): the test
database, the real broker and the real Redis channel layer, so what a page shows is what the
pipeline did. Chromium is Debian's, driven by Playwright; if it is missing the tests fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checkout_site.embedded_redis import free_port
from tests.conftest import ROOT, Worker, stack_env

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Daphne:
    """The ASGI server of the site, as ``make run`` starts it, on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="daphne-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Daphne:
        cmd = [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            "checkout_site.asgi:application",
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                cmd, cwd=ROOT, env=stack_env(), stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/static/css/site.css", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"daphne did not answer:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def daphne_server(worker: Worker) -> Iterator[Daphne]:
    server = Daphne().start()
    yield server
    server.stop()


@pytest.fixture
def daphne(daphne_server: Daphne, stack: Worker) -> Daphne:
    """The site on the real stack, for one test: committed data, a live worker, empty queues."""
    return daphne_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: Playwright's sync API keeps an event loop in this thread while it runs, and
    # tests in other modules drive their own loops (async_to_sync) in this same thread. While it
    # runs, the tests' own ORM calls (and pytest-django's flush) are still plain synchronous
    # code, so Django's guard against ORM calls inside an event loop must stand aside.
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is not at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
            "or set CHROMIUM_PATH. Browser tests are part of the suite and do not skip.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, daphne: Daphne) -> Iterator[Any]:
    """A fresh page on the site that fails the test on any console error or uncaught exception."""
    context = browser.new_context(base_url=daphne.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield tab
    context.close()
    assert not problems, "the page logged errors:\n" + "\n".join(problems)
