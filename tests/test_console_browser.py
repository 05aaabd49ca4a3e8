"""The console in a real browser on the real stack: daphne, a Celery worker, Redis, Chromium.

Set CONSOLE_SCREENSHOTS=<dir> to save what the browser saw at each step.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from checkout_site.console.faults import CACHE_SECONDS
from checkout_site.console.models import Fault
from orders.models import Order, OrderStatus
from services.bus.broker import queue_depths
from services.bus.models import DeadLetter
from services.inventory.models import Stock
from services.payment.models import Payment
from tests.conftest import wait_for
from tests.helpers import ARTICLE_ORDER, snap, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("stack", "services_restored", "customer", "product"),
]


def _place(page: Any, server: Any, body: dict[str, Any] | None = None) -> int:
    response = page.request.post(f"{server.url}/orders", data=body or ARTICLE_ORDER)
    assert response.status == 202
    return response.json()["orderId"]


def _card(page: Any, service: str) -> Any:
    return page.locator(f'.service[data-service="{service}"]')


def _waiting(page: Any, service: str) -> int:
    text = _card(page, service).locator('[data-field="waiting"]').text_content() or ""
    return int(text) if text.isdigit() else -1


def _switch_on_fault(page: Any, service: str, kind: str, value: str = "") -> None:
    page.select_option('.fault-form select[name="service"]', service)
    page.select_option('.fault-form select[name="kind"]', kind)
    page.fill('.fault-form input[name="value"]', value)
    page.click(".fault-form button[type=submit]")
    page.wait_for_selector(f'.fault-list li[data-fault="{kind}"]')
    # Workers re-read the fault table at most this often.
    time.sleep(CACHE_SECONDS + 0.3)


def test_stopping_notification_holds_orders_at_confirmed_and_starting_it_ships_them(
    staff_page, live_site
):
    page = staff_page
    notification = _card(page, "notification")
    expect(page.locator(".service[data-service=notification]")).to_have_attribute(
        "data-running", "true"
    )

    notification.locator("[data-action=toggle]").click()
    page.wait_for_selector('.service[data-service="notification"][data-running="false"]')
    page.wait_for_selector("[data-down-banner]:not([hidden])")
    ids = [_place(page, live_site) for _ in range(3)]

    wait_for(
        lambda: all(Order.objects.get(pk=i).status == OrderStatus.CONFIRMED for i in ids),
        timeout=30,
    )
    # Each order sends notification two events (paid, reserved); they all wait.
    wait_for(lambda: _waiting(page, "notification") >= 6, timeout=15)
    assert queue_depths()["notification"] >= 6
    time.sleep(0.5)
    assert all(Order.objects.get(pk=i).status == OrderStatus.CONFIRMED for i in ids)
    snap(page, "console-notification-stopped")

    notification.locator("[data-action=toggle]").click()
    page.wait_for_selector('.service[data-service="notification"][data-running="true"]')
    for order_id in ids:
        assert wait_terminal(order_id, timeout=30).status == OrderStatus.SHIPPED
    wait_for(lambda: _waiting(page, "notification") == 0, timeout=15)
    assert queue_depths()["notification"] == 0
    assert page.locator("[data-down-banner]").is_hidden()
    page.wait_for_timeout(2500)  # one more round of the charts
    snap(page, "console")
    assert page.errors == []


def test_duplicate_delivery_raises_the_duplicate_counter_and_changes_no_stock_or_payment(
    staff_page, live_site
):
    page = staff_page
    _switch_on_fault(page, "payment", "duplicate")
    payment = _card(page, "payment")
    assert payment.locator('[data-field="duplicate"]').text_content() == "0"

    order_id = _place(page, live_site)
    assert wait_terminal(order_id).status == OrderStatus.SHIPPED

    expect(payment.locator("[data-field=duplicate]")).to_have_text("1", timeout=15000)
    assert Payment.objects.filter(order_id=order_id).count() == 1
    assert Stock.objects.get(product_id=456).on_hand == 49
    assert Order.objects.get(pk=order_id).status == OrderStatus.SHIPPED
    snap(page, "console-duplicate-fault")

    page.goto(f"{live_site.url}/console/events/?order={order_id}")
    chip = page.locator('.delivery[data-service="payment"][data-duplicates="1"]')
    chip.wait_for()
    assert "1 duplicate skipped" in chip.text_content()
    assert "duplicate delivery" in chip.text_content()
    snap(page, "console-deliveries")

    page.goto(f"{live_site.url}/console/")
    page.click('.fault-list li[data-fault="duplicate"] button')
    page.wait_for_selector(".fault-list", state="detached")
    assert not Fault.objects.exists()
    assert page.errors == []


def test_a_dead_lettered_event_is_redriven_from_the_console_and_its_order_completes(
    staff_page, live_site
):
    page = staff_page
    _switch_on_fault(page, "payment", "failure", "1")
    order_id = _place(page, live_site)

    letter = wait_for(lambda: DeadLetter.objects.filter(order_id=order_id).first(), timeout=40)
    assert Order.objects.get(pk=order_id).status == OrderStatus.INITIATED
    expect(page.locator(".service[data-service=payment] [data-field=dead_lettered]")).to_have_text(
        "1", timeout=15000
    )
    page.click('.fault-list li[data-fault="failure"] button')
    page.wait_for_selector(".fault-list", state="detached")
    time.sleep(CACHE_SECONDS + 0.3)

    page.goto(f"{live_site.url}/console/dead-letters/")
    row = page.locator(f'tr[data-dead-letter="{letter.pk}"]')
    assert "InjectedFailure" in row.text_content()
    assert re.search(r"\b6\b", row.locator("td.num").text_content())
    snap(page, "console-dead-letters")
    row.locator('button[name="one"]').click()
    page.wait_for_selector(".console-messages .msg-success")

    assert wait_terminal(order_id, timeout=30).status == OrderStatus.SHIPPED
    letter.refresh_from_db()
    assert letter.redriven_at is not None
    assert Payment.objects.filter(order_id=order_id).count() == 1
    assert page.errors == []


def test_the_other_console_pages_open_without_errors(staff_page, live_site):
    page = staff_page
    for path, marker in (
        ("/console/topology/", ".matrix"),
        ("/console/orders/", ".filters"),
        ("/console/events/", "#event-rows"),
    ):
        page.goto(f"{live_site.url}{path}")
        page.wait_for_selector(marker)
        page.wait_for_timeout(500)
        snap(page, "console-" + path.strip("/").split("/")[-1])
    assert page.errors == []
