"""The HTML pages as rendered by the server, before their scripts take over."""

from __future__ import annotations

import json
import re

import pytest

from orders.contract import OrderRequest
from orders.models import OrderStatus
from orders.sync_checkout import order_place_sync
from services.bus.models import Event
from tests.helpers import post_order

pytestmark = pytest.mark.django_db

ARTICLE = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")


def _json_script(html: str, element_id: str) -> object:
    found = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert found, f"no {element_id} data on the page"
    return json.loads(found.group(1))


def test_the_shop_lists_products_with_their_stock_and_offers_the_declined_token(
    client, customer, product
):
    html = client.get("/").content.decode()

    assert "Product 456" in html
    assert 'data-stock-of="456"' in html and "50 in stock" in html
    assert 'value="tok_declined"' in html
    assert 'action="/orders"' in html and "csrfmiddlewaretoken" in html


def test_each_render_of_the_shop_carries_a_new_idempotency_key(client, customer, product):
    keys = {
        re.search(r'data-idempotency-key="([^"]+)"', client.get("/").content.decode()).group(1)
        for _ in range(2)
    }

    assert len(keys) == 2


def test_the_shop_feed_starts_from_the_last_events_in_the_log(client, customer, product):
    for _ in range(5):
        order_place_sync(request=ARTICLE)  # six events each
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))

    html = client.get("/").content.decode()

    after = int(re.search(r'data-feed-after="(\d+)"', html).group(1))
    assert len([s for s in seqs if s > after]) == 25


def test_an_empty_shop_says_how_to_load_the_catalog(client):
    html = client.get("/").content.decode()

    assert "load_demo" in html
    assert "No orders yet" in html


def test_the_order_page_carries_its_events_masked_and_the_schema_guide(client, customer, product):
    order_id = post_order(client).json()["orderId"]

    html = client.get(f"/orders/{order_id}").content.decode()

    messages = _json_script(html, "messages")
    assert [m["event"]["type"] for m in messages] == ["OrderCreated"]
    assert messages[0]["status"] == "INITIATED"
    assert messages[0]["event"]["payload"]["paymentToken"] == "tok_****c123"
    assert "tok_abc123" not in html
    guide = _json_script(html, "schemas")
    assert guide["PaymentFailed"]["kind"] == "failure"
    assert guide["InventoryRejected"]["kind"] == "failure"
    assert {
        guide[t]["kind"] for t in ("InventoryReleased", "PaymentRefunded", "OrderCancelled")
    } == {"compensation"}
    assert guide["PaymentProcessed"]["schema"] == "PaymentProcessed v1"


def test_a_request_response_order_page_says_so_and_ends_with_its_status(client, customer, product):
    order_id = order_place_sync(request=ARTICLE).order.pk

    html = client.get(f"/orders/{order_id}").content.decode()

    assert "request-response" in html
    messages = _json_script(html, "messages")
    assert messages[0]["status"] == "PENDING_PAYMENT"
    assert messages[-1]["status"] == "SHIPPED"
    assert 'id="order-status" data-status="SHIPPED"' in html


def test_the_order_page_of_an_unknown_order_is_404(client):
    assert client.get("/orders/4242").status_code == 404


def test_the_compare_page_offers_both_checkouts(client, customer, product):
    response = client.get("/compare")

    html = response.content.decode()
    assert response.status_code == 200
    assert "/orders/sync" in html and "POST /orders" in html
    assert "js/compare.js" in html


def test_the_swimlane_says_which_service_the_operator_stopped(client, customer, product):
    from checkout_site.console.control import services_state_forget
    from checkout_site.console.models import ServiceState

    order_id = post_order(client).json()["orderId"]
    ServiceState.objects.create(service="notification", running=False)
    services_state_forget()

    html = client.get(f"/orders/{order_id}").content.decode()

    banner = re.search(r'<p class="lane-down" data-lanes-down ([^>]*)>(.*?)</p>', html, re.S)
    assert banner and "hidden" not in banner.group(1)
    assert "notification" in banner.group(2)
    assert 'data-service="notification"' in html


def test_the_swimlane_banner_is_hidden_while_every_service_runs(client, customer, product):
    order_id = post_order(client).json()["orderId"]

    html = client.get(f"/orders/{order_id}").content.decode()

    assert re.search(r'<p class="lane-down" data-lanes-down hidden', html)


@pytest.mark.parametrize("path", ["/", "/compare", "/orders/{order}"])
def test_every_page_carries_the_statuses_its_script_reads(client, customer, product, path):
    order_id = post_order(client).json()["orderId"]

    html = client.get(path.format(order=order_id)).content.decode()

    assert _json_script(html, "order-statuses") == {
        "all": [status.value for status in OrderStatus],
        "initial": "INITIATED",
        "terminal": ["SHIPPED", "CANCELLED"],
    }
    assert 'class="badge status-PENDING_PAYMENT"' in html


def _lane_heads(html: str) -> list[str]:
    head = re.search(r'<div class="lane-head".*?</div>', html, re.S)
    assert head, "no lane head on the page"
    return re.findall(r'data-service="([a-z]+)"', head.group(0))


def _shipped_with_points(client) -> int:
    from checkout_site.console.levers import LeverWish, lever_set
    from tests.bus_sim import InProcessBus

    wish = LeverWish(lever="subscription", service="loyalty", value="on", event_type="OrderShipped")
    lever_set(wish, by="test")
    order_id = post_order(client).json()["orderId"]
    InProcessBus(order_ids=[order_id]).drain()
    return order_id


def test_the_swimlane_has_the_four_core_lanes_and_no_empty_loyalty_one(client, customer, product):
    from tests.bus_sim import InProcessBus

    order_id = post_order(client).json()["orderId"]
    InProcessBus(order_ids=[order_id]).drain()

    html = client.get(f"/orders/{order_id}").content.decode()

    assert _lane_heads(html) == ["orders", "payment", "inventory", "notification"]
    assert "--lanes: 4" in html
    lanes = _json_script(html, "service-lanes")
    assert [(lane["name"], lane["core"]) for lane in lanes][-1] == ("loyalty", False)


def test_the_swimlane_grows_a_loyalty_lane_for_an_order_that_earned_points(
    client, customer, product
):
    order_id = _shipped_with_points(client)

    html = client.get(f"/orders/{order_id}").content.decode()

    assert _lane_heads(html) == ["orders", "payment", "inventory", "notification", "loyalty"]
    assert "--lanes: 5" in html
    types = [m["event"]["type"] for m in _json_script(html, "messages")]
    assert types[-1] == "PointsAwarded"


def test_the_shop_shows_the_customers_points_from_the_order_services_copy(
    client, customer, product
):
    assert "0 loyalty points" in client.get("/").content.decode()
    _shipped_with_points(client)

    html = client.get("/").content.decode()

    assert 'id="customer-points"' in html and "89 loyalty points" in html
    points = _json_script(html, "catalog")["points"]["123"]
    assert points["points"] == 89 and points["seq"] > 0
