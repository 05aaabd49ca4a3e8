"""Event versions on the live pages, in headless Chromium against the real stack.

An order placed while the producer emits OrderCreated v1 and one placed after the schema lever
switched it to v2: the shop's feed and the order page's swimlane show each event's version, and
the shop reads both orders' customer through the one upcast the server sends. The console's
select switches the producer. Set CONSOLE_SCREENSHOTS=<dir> to save the pages at 1280 and 390 px.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from checkout_site.console.levers import LeverWish, lever_set
from orders.contract import OrderRequest
from orders.models import Order
from orders.placement import order_place
from services.bus.models import Event
from tests.helpers import ARTICLE_ORDER, snap, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

ARTICLE = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")


def _orders_on_both_versions() -> tuple[int, int]:
    v1, _ = order_place(request=ARTICLE)
    lever_set(LeverWish(lever="schema", service="OrderCreated", value="2"), by="test")
    v2, _ = order_place(request=ARTICLE)
    return v1.pk, v2.pk


def test_the_feed_shows_each_events_version_and_both_orders_customer(page, customer, product):
    page.goto("/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")

    v1, v2 = _orders_on_both_versions()

    for order_id, version in ((v1, "v1"), (v2, "v2")):
        created = page.locator(f'#feed [data-order="{order_id}"][data-type="OrderCreated"]')
        expect(created.locator(".version-chip")).to_have_text(version)
        row = page.locator(f'#orders [data-order="{order_id}"]')
        expect(row.locator(".order-what")).to_contain_text("Ada Lovelace")
        expect(row.locator(".badge")).to_have_text("SHIPPED")
    expect(
        page.locator(f'#feed [data-order="{v2}"][data-type="OrderCreated"] .version-chip.newer')
    ).to_have_count(1)
    expect(
        page.locator(f'#feed [data-order="{v1}"][data-type="OrderCreated"] .version-chip.newer')
    ).to_have_count(0)
    snap(page, "shop-versions-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    snap(page, "shop-versions-390")


def test_the_swimlane_shows_each_events_version(page, customer, product):
    v1, v2 = _orders_on_both_versions()
    for order_id in (v1, v2):
        wait_terminal(order_id)

    for order_id, version in ((v1, "1"), (v2, "2")):
        page.goto(f"/orders/{order_id}")
        created = page.locator('#rows .lane-row[data-type="OrderCreated"]')
        expect(created.locator(".version-chip")).to_have_text(f"v{version}")
        expect(
            page.locator('#rows .lane-row[data-type="OrderShipped"] .version-chip')
        ).to_have_text("v1")
        created.locator(".row-label").click()
        expect(page.locator("#inspector .schema-name")).to_have_text(f"OrderCreated v{version}")
        field = "customerId" if version == "2" else "userId"
        expect(page.locator("#inspector pre.json").first).to_contain_text(f'"{field}"')
        snap(page, f"order-v{version}-1280")
        page.set_viewport_size({"width": 390, "height": 844})
        snap(page, f"order-v{version}-390")
        page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.usefixtures("stack", "services_restored", "customer", "product")
def test_the_console_switches_the_producer_to_v2_and_the_next_order_ships_on_it(
    staff_page, live_site
):
    page = staff_page
    select = page.locator('select[data-schema-lever="OrderCreated"]')
    assert select.input_value() == "1"

    select.select_option("2")
    page.wait_for_selector("#lever-message[data-ok='true']")
    assert "schema OrderCreated v2" in (page.locator("#lever-record").text_content() or "")
    # A new version gives up no guarantee: no banner.
    assert page.locator("[data-levers-banner]").is_hidden()
    snap(page, "console-schema-v2-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    snap(page, "console-schema-v2-390")

    order_id = page.request.post(f"{live_site.url}/orders", data=ARTICLE_ORDER).json()["orderId"]

    assert wait_terminal(order_id).status == "SHIPPED"
    assert Event.objects.get(order_id=order_id, type="OrderCreated").version == 2
    assert Order.objects.get(pk=order_id).status == "SHIPPED"
    assert not page.errors
