"""The operator's record in a real browser on the real stack: a lever pulled on the console shows
at once as a mark on the swimlane of an order in flight that is open in another tab, and on the
console's live charts.

Set CONSOLE_SCREENSHOTS=<dir> to save what the browser saw.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from checkout_site.console.control import service_start, service_stop
from orders.models import Order, OrderStatus
from tests.conftest import wait_for
from tests.helpers import ARTICLE_ORDER, snap, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("stack", "services_restored", "customer", "product"),
]

LABEL = "idempotency off at payment"


def _chart_marks(page: Any, chart: str) -> list[dict[str, Any]]:
    return json.loads(page.locator(f"#{chart}").get_attribute("data-marks") or "[]")


def test_a_lever_pulled_on_the_console_marks_the_open_order_and_the_charts(staff_page, live_site):
    console = staff_page
    service_stop(name="notification")  # the order then waits at CONFIRMED: in flight
    response = console.request.post(f"{live_site.url}/orders", data=ARTICLE_ORDER)
    order_id = response.json()["orderId"]
    wait_for(lambda: Order.objects.get(pk=order_id).status == OrderStatus.CONFIRMED)

    order_page = console.context.new_page()
    errors: list[str] = []
    order_page.on("pageerror", lambda error: errors.append(str(error)))
    order_page.goto(f"{live_site.url}/orders/{order_id}")
    order_page.wait_for_selector('.lane-row[data-type="OrderConfirmed"]')
    order_page.wait_for_selector("#conn[data-state='live']")
    assert order_page.locator(".record-mark").count() == 0

    console.select_option('select[data-lever="idempotency"][data-service="payment"]', "off")
    console.wait_for_selector("#lever-message[data-ok='true']")

    mark = order_page.locator(".record-mark[data-action='lever']")
    mark.wait_for(timeout=10_000)
    assert LABEL in (mark.text_content() or "")
    assert "by operator" in (mark.text_content() or "")
    # In time order: after the events so far, before the "waiting for…" row.
    kinds = order_page.eval_on_selector_all(
        "#rows > li",
        "rows => rows.map(r => r.classList.contains('record-mark') ? 'mark'"
        " : r.classList.contains('pending') ? 'pending' : r.dataset.type)",
    )
    assert kinds.index("mark") > kinds.index("OrderConfirmed")
    assert kinds[-1] == "pending"
    snap(order_page, "order-marker")

    console.wait_for_function(
        "label => ['chart-throughput', 'chart-latency'].every(id =>"
        " JSON.parse(document.getElementById(id).dataset.marks || '[]')"
        ".some(m => m.label === label))",
        arg=LABEL,
        timeout=15_000,
    )
    (throughput,) = _chart_marks(console, "chart-throughput")
    assert throughput["label"] == LABEL
    assert LABEL in (console.locator("#chart-throughput").get_attribute("aria-label") or "")
    snap(console, "console-markers")

    # The mark stays with the order once it finishes, and a fresh page reads it from the record.
    service_start(name="notification")
    wait_terminal(order_id)
    order_page.reload()
    order_page.wait_for_selector('.lane-row[data-type="OrderShipped"]')
    order_page.locator(".record-mark[data-action='lever']").wait_for(timeout=10_000)
    kinds = order_page.eval_on_selector_all(
        "#rows > li", "rows => rows.map(r => r.dataset.type || 'mark')"
    )
    assert kinds.index("mark") < kinds.index("OrderShipped")
    assert errors == [] and console.errors == []
