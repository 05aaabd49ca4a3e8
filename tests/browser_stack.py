"""Fixtures for browser tests: daphne serving the site on the test database, and headless Chromium.

Loaded for every test module through ``pytest_plugins`` in tests/conftest.py: ask for ``page``
(or ``live_site`` for the server alone). ``live_site`` is the one live server of the suite:
daphne as ``make run`` starts it (checkout_site/processes.py). Channels' ``DaphneProcess``
(``ChannelsLiveServerTestCase``) forks the test process and serves its settings; this one is a
fresh process with the same environment as the worker (``stack_env``): the test database, the
real broker and the real Redis channel layer, so what a page shows is what the pipeline did.
Chromium is Debian's, driven by Playwright; if it is missing the tests fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from checkout_site import processes
from checkout_site.embedded_redis import free_port
from tests.conftest import Worker, stack_env
from tests.session_logs import session_log

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class LiveSite:
    url: str
    process: processes.Process


@pytest.fixture(scope="session")
def live_site(django_db_setup: None) -> Iterator[LiveSite]:
    """daphne serving the whole site (pages, sockets, static files) on a free port."""
    port = free_port()
    # DEBUG: the staff session cookie must travel over plain http. The test process allows sync
    # ORM calls under Playwright's loop (``browser``); the server must not.
    env = stack_env(DJANGO_DEBUG="true")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log = processes.log_file("daphne")
    session_log("daphne", log)
    server = processes.daphne(port=port, env=env, log=log)
    with server:
        server.wait(timeout=30)
        yield LiveSite(url=f"http://127.0.0.1:{port}", process=server)


@pytest.fixture
def daphne(live_site: LiveSite, stack: Worker) -> LiveSite:
    """The site on the real stack, for one test: committed data, a live worker, empty queues."""
    return live_site


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
def page(browser: Any, daphne: LiveSite) -> Iterator[Any]:
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
