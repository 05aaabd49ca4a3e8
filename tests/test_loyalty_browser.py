"""Loyalty in a real browser on the real stack: subscribe it from the console with a replay,
watch an order's journey grow a loyalty lane, and see the customer's points on the shop, on a
desktop and on a phone.

Set CONSOLE_SCREENSHOTS=<dir> to save what the browser saw at each step.
"""

from __future__ import annotations

import pytest

from services.loyalty.models import PointsAward
from tests.conftest import wait_for
from tests.helpers import ARTICLE_ORDER, snap, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("stack", "services_restored", "customer", "product"),
]

CORE = ["orders", "payment", "inventory", "notification"]
# A full-page screenshot would paint the sticky top bar in the middle of a long page.
STILL_HEADER = ".topbar { position: static; }"


def _lanes(page) -> list[str]:
    return page.eval_on_selector_all(
        "#lane-head [data-service]", "spans => spans.map((s) => s.dataset.service)"
    )


def test_subscribing_loyalty_with_replay_grows_its_lane_and_the_shop_shows_the_points(
    staff_page, live_site
):
    page = staff_page
    earlier = page.request.post(f"{live_site.url}/orders", data=ARTICLE_ORDER).json()["orderId"]
    wait_terminal(earlier)
    page.goto(f"{live_site.url}/orders/{earlier}")
    page.wait_for_selector('#rows .lane-row[data-type="OrderShipped"]')
    assert _lanes(page) == CORE

    page.goto(f"{live_site.url}/console/#levers")
    page.check('input[data-replay-for="loyalty"]')
    page.check('input[data-subscription][data-service="loyalty"][data-event-type="OrderShipped"]')
    page.wait_for_selector("#lever-message[data-ok='true']")
    record = page.locator("#lever-record").text_content() or ""
    assert "subscription on at loyalty for OrderShipped, replayed from the log" in record
    page.add_style_tag(content=STILL_HEADER)
    snap(page, "console-subscription-loyalty")

    wait_for(lambda: PointsAward.objects.filter(order_id=earlier).exists())
    page.goto(f"{live_site.url}/orders/{earlier}")
    page.wait_for_selector('#rows .lane-row[data-type="PointsAwarded"] .mark.lane-loyalty')
    assert _lanes(page) == [*CORE, "loyalty"]
    snap(page, "order-swimlane-loyalty")

    page.wait_for_timeout(1300)  # the workers re-read the subscriptions this often
    live = page.request.post(f"{live_site.url}/orders", data=ARTICLE_ORDER).json()["orderId"]
    page.goto(f"{live_site.url}/orders/{live}")
    page.wait_for_selector('#rows .lane-row[data-type="PointsAwarded"]', timeout=20_000)
    assert _lanes(page) == [*CORE, "loyalty"]

    page.goto(f"{live_site.url}/")
    points = page.locator("#customer-points")
    wait_for(lambda: points.get_attribute("data-points") == "178", timeout=10)
    assert points.text_content() == "178 loyalty points"
    snap(page, "shop-points")
    page.set_viewport_size({"width": 390, "height": 844})
    snap(page, "shop-points-phone")
    page.goto(f"{live_site.url}/orders/{live}")
    page.wait_for_selector('#rows .lane-row[data-type="PointsAwarded"]')
    snap(page, "order-swimlane-loyalty-phone")
    assert page.errors == []
