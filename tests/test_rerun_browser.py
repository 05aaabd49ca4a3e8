"""The counterfactual re-run in a real browser on the real stack: from a shipped order's page (its
ledger panel healthy), run it again with payment's idempotency off and a duplicate delivery, and
watch both journeys and both verdicts fill in: one charge on the left, two on the right.

Set CONSOLE_SCREENSHOTS=<dir> to save what the browser saw, at 1280 and 390 pixels wide.
"""

from __future__ import annotations

import pytest

from tests.helpers import ARTICLE_ORDER, snap, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("stack", "services_restored", "customer", "product"),
]


@pytest.fixture(autouse=True)
def _unsafe_levers_allowed(settings):
    settings.CHECKOUT_UNSAFE_LEVERS = True


def test_a_rerun_with_idempotency_off_and_a_duplicate_shows_one_charge_beside_two(
    staff_page, live_site
):
    page = staff_page
    order_id = page.request.post(f"{live_site.url}/orders", data=ARTICLE_ORDER).json()["orderId"]
    wait_terminal(order_id)

    page.goto(f"{live_site.url}/orders/{order_id}")
    verdict = page.locator("#order-ledger .ledger-verdict[data-state='healthy']")
    verdict.wait_for(timeout=10_000)
    assert "1 charge" in (verdict.text_content() or "")
    assert page.locator("#order-ledger tr[data-service='payment'] td").first.text_content() == "1"
    snap(page, "order-ledger")
    page.set_viewport_size({"width": 390, "height": 844})
    snap(page, "order-ledger-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("#order-rerun")
    page.select_option("#rerun-flip", "idempotency/payment/off")
    page.select_option("#rerun-fault", "duplicate/payment")
    page.click("#rerun-run")

    page.wait_for_url(f"**/orders/{order_id}/rerun?new=*")
    new_id = int(page.url.rsplit("=", 1)[1])
    left = page.locator(f".rerun-side[data-order='{order_id}']")
    right = page.locator(f".rerun-side[data-order='{new_id}']")
    right.locator("[data-side-status][data-status='SHIPPED']").wait_for(timeout=20_000)
    right.locator(".ledger-verdict[data-state='violated']").wait_for(timeout=10_000)

    assert left.locator("[data-ledger-headline]").text_content() == "1 charge"
    doubled = right.locator("[data-ledger-headline]").text_content() or ""
    # The second PaymentProcessed is a doubled event too.
    assert doubled.startswith("2 charges — ") and doubled.endswith(" violated")
    assert "one_charge_per_order" in doubled
    assert right.locator("[data-journey] li[data-type='PaymentProcessed']").count() == 2
    assert left.locator("[data-journey] li[data-type='PaymentProcessed']").count() == 1
    assert right.locator(".ledger-order-violations li[data-invariant='one_charge_per_order'] a")
    assert page.errors == []
    snap(page, "rerun-double-charge")
    page.set_viewport_size({"width": 390, "height": 844})
    snap(page, "rerun-double-charge-390")
