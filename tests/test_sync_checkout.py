"""POST /orders/sync: the article's request-response checkout, for comparison."""

from __future__ import annotations

import pytest

from checkout_site.console.faults import fault_add
from services.bus.models import Event
from services.inventory.models import Stock
from services.payment.models import Payment
from tests.helpers import ARTICLE_ORDER, SHIPPED_JOURNEY

pytestmark = pytest.mark.django_db


def _post_sync(client, body=None):
    return client.post("/orders/sync", data=body or ARTICLE_ORDER, content_type="application/json")


def test_it_waits_for_every_hop_and_answers_201_with_the_final_status(
    client, customer, product, mailoutbox
):
    response = _post_sync(client)

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "SHIPPED"
    assert [h["service"] for h in body["hops"]] == ["payment", "inventory", "notification"]
    assert all(h["ms"] >= 0 for h in body["hops"])
    assert response["Location"] == f"/orders/{body['orderId']}"
    assert Stock.objects.get(product_id=456).on_hand == 49
    assert [m.subject for m in mailoutbox] == ["Your order is confirmed!"]


def test_a_declined_payment_stops_the_chain_at_the_first_hop(client, customer, product):
    body = _post_sync(client, {**ARTICLE_ORDER, "paymentToken": "tok_declined"}).json()

    assert body["status"] == "CANCELLED"
    assert [h["service"] for h in body["hops"]] == ["payment"]
    assert Stock.objects.get(product_id=456).on_hand == 50


def test_missing_stock_refunds_the_payment_in_the_same_request(client, customer, make_product):
    make_product(pk=456, stock=1)

    body = _post_sync(client, {**ARTICLE_ORDER, "quantity": 2}).json()

    assert body["status"] == "CANCELLED"
    assert Payment.objects.get(order_id=body["orderId"]).status == Payment.Status.REFUNDED
    assert Stock.objects.get(product_id=456).on_hand == 1


def test_its_events_are_logged_for_the_pages_but_never_sent_to_the_services(
    client, customer, product
):
    order_id = _post_sync(client).json()["orderId"]

    events = Event.objects.filter(order_id=order_id)
    assert [e.type for e in events] == SHIPPED_JOURNEY
    # Marked as published at birth: neither the flush nor the relay ever sends them.
    assert all(e.published_at is not None for e in events)


def test_bad_input_is_refused_as_on_the_event_driven_path(client, customer, product):
    response = _post_sync(client, {**ARTICLE_ORDER, "quantity": 0})

    assert response.status_code == 422
    assert response.json()["field"] == "quantity"


def test_a_slow_service_keeps_the_customer_waiting_for_its_whole_delay(client, customer, product):
    fault_add(service="inventory", kind="latency", value=300)

    body = _post_sync(client).json()

    inventory_hop = next(h for h in body["hops"] if h["service"] == "inventory")
    assert inventory_hop["ms"] >= 300
    assert body["totalMs"] >= 300
    assert body["status"] == "SHIPPED"


def test_a_failing_service_breaks_the_chain_and_the_customer_gets_an_error(
    client, customer, product, mailoutbox
):
    fault_add(service="notification", kind="failure", value=1.0)

    response = _post_sync(client)

    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "service_failed"
    assert "notification" in body["message"]
    assert [h["service"] for h in body["hops"]] == ["payment", "inventory", "notification"]
    assert body["hops"][-1]["outcome"] == "failed"
    # Payment and stock were taken before the chain broke: the customer sees an error anyway.
    assert body["status"] == "CONFIRMED"
    assert mailoutbox == []
