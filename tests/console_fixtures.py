"""Fixtures for the console's tests: a signed-in staff browser page on the suite's live server
(``live_site``, tests/browser_stack.py), and a clean slate of services and faults after each test.

Loaded by the console's modules through ``pytest_plugins = ["tests.console_fixtures"]``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser_stack import LiveSite

STAFF_PASSWORD = "console-test-password"


@pytest.fixture
def services_restored(transactional_db: None) -> Iterator[None]:
    """Every service consuming, no fault on and every lever at its default, after the test,
    whatever it did."""
    yield
    from checkout_site.console.control import (
        service_start,
        services_running,
        services_state_forget,
    )
    from checkout_site.console.faults import CACHE_SECONDS
    from checkout_site.console.models import Crash, Fault, LeverChange

    had_faults = Fault.objects.exists() or LeverChange.objects.exists()
    Fault.objects.all().delete()
    LeverChange.objects.all().delete()
    Crash.objects.all().delete()
    # Only the services the test stopped: each start waits a second for the workers' replies.
    services_state_forget()
    for name, running in services_running().items():
        if not running:
            service_start(name=name)
    if had_faults:
        # Workers cache the faults and levers this long; the next test must not meet stale ones.
        time.sleep(CACHE_SECONDS + 0.3)


@pytest.fixture
def staff_user(transactional_db: None) -> Any:
    from django.contrib.auth import get_user_model

    from checkout_site.console.views import OPERATOR_PERMISSIONS
    from tests.helpers import permissions_grant

    user = get_user_model().objects.create_user(
        "operator", "operator@example.com", STAFF_PASSWORD, is_staff=True
    )
    return permissions_grant(user, OPERATOR_PERMISSIONS)


@pytest.fixture
def staff_page(browser: Any, live_site: LiveSite, staff_user: Any) -> Iterator[Any]:
    """A browser page signed in as staff through /admin/login/, with page errors collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"{live_site.url}/admin/login/?next=/console/")
    page.fill("#id_username", staff_user.username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/console/")
    yield page
    context.close()
