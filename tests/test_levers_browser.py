"""The levers in a real browser on the real stack: pull one from the console, see the banner,
watch the ledger name the double charge, and put everything back in one click.

Set CONSOLE_SCREENSHOTS=<dir> to save what the browser saw at each step.
"""

from __future__ import annotations

import pytest

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


def test_idempotency_off_shows_the_banner_and_the_ledger_names_the_double_charge(
    staff_page, live_site
):
    page = staff_page
    banner = page.locator("[data-levers-banner]")
    assert banner.is_hidden()

    page.select_option('select[data-lever="idempotency"][data-service="payment"]', "off")
    page.wait_for_selector("#lever-message[data-ok='true']")
    page.wait_for_selector("[data-levers-banner]:not([hidden])")
    assert "idempotency off at payment" in (banner.text_content() or "")
    assert "idempotency off at payment" in (page.locator("#lever-record").text_content() or "")

    page.select_option('.fault-form select[name="service"]', "payment")
    page.select_option('.fault-form select[name="kind"]', "duplicate")
    page.click(".fault-form button[type=submit]")
    page.wait_for_selector('.fault-list li[data-fault="duplicate"]')
    page.wait_for_timeout(1300)  # the workers re-read levers and faults this often

    response = page.request.post(f"{live_site.url}/orders", data=ARTICLE_ORDER)
    order_id = response.json()["orderId"]
    wait_for(lambda: Payment.objects.filter(order_id=order_id).count() == 2)
    wait_terminal(order_id)

    violation = page.locator(
        f'#ledger-violations li[data-invariant="one_charge_per_order"][data-order="{order_id}"]'
    )
    violation.wait_for(timeout=10_000)
    assert page.locator("#ledger-health").get_attribute("data-healthy") == "false"
    assert violation.locator("a").get_attribute("href") == f"/orders/{order_id}"
    snap(page, "console-levers-double-charge")

    page.goto(f"{live_site.url}/orders/{order_id}")
    assert page.locator("[data-levers-banner]").is_visible()

    page.goto(f"{live_site.url}/console/")
    page.click("[data-action=reset]")
    page.wait_for_url("**/console/#levers")
    assert page.locator("[data-levers-banner]").is_hidden()
    assert (
        page.locator('select[data-lever="idempotency"][data-service="payment"]').input_value()
        == "on"
    )
    assert page.locator(".fault-list").count() == 0
    assert page.errors == []
