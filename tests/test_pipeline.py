"""The checkout end to end on the real stack: Redis, a Celery worker, the database."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from orders.models import Order, OrderStatus
from services.bus.models import Event
from services.bus.outbox import outbox_flush
from services.bus.relay import outbox_relay
from services.inventory.models import Stock
from services.notification.models import SentNotification
from services.payment.models import Payment
from tests.conftest import wait_for
from tests.helpers import (
    ARTICLE_ORDER,
    SHIPPED_JOURNEY,
    event_types,
    post_order,
    wait_drained,
    wait_terminal,
)

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]


def test_the_articles_request_ships_with_events_in_causal_order(
    stack, client, customer, product, mail_dir
):
    response = post_order(client)

    assert response.status_code == 202
    order_id = response.json()["orderId"]
    assert response.json() == {
        "orderId": order_id,
        "status": "INITIATED",
        "message": "Order received. Processing...",
    }
    assert response["Location"] == f"/orders/{order_id}"
    wait_terminal(order_id)

    events = list(Event.objects.filter(order_id=order_id).order_by("seq"))
    assert Counter(e.type for e in events) == Counter(SHIPPED_JOURNEY)
    assert events[0].type == "OrderCreated" and events[0].causation_id is None
    seq_of = {e.event_id: e.seq for e in events}
    for event in events[1:]:
        assert seq_of[event.causation_id] < event.seq, f"{event.type} precedes its cause"
    assert Stock.objects.get(product_id=456).on_hand == 49
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.CHARGED
    sent = [p.read_text() for p in mail_dir.iterdir()]
    assert any(
        f"order #{order_id} is confirmed" in text and "Your order is confirmed!" in text
        for text in sent
    )


def test_the_json_view_shows_the_order_and_its_events(stack, client, customer, product):
    order_id = post_order(client).json()["orderId"]
    wait_terminal(order_id)

    body = client.get(f"/orders/{order_id}", headers={"Accept": "application/json"}).json()

    assert body["status"] == "SHIPPED"
    assert [e["type"] for e in body["events"]] == event_types(order_id)
    assert [e["seq"] for e in body["events"]] == sorted(e["seq"] for e in body["events"])
    assert body["events"][0]["payload"]["paymentToken"] == "tok_****c123"


def test_a_declined_token_cancels_and_gives_the_stock_back(stack, client, customer, product):
    response = post_order(client, {**ARTICLE_ORDER, "paymentToken": "tok_declined", "quantity": 3})
    order = wait_terminal(response.json()["orderId"])

    assert order.status == OrderStatus.CANCELLED
    types = event_types(order.pk)
    assert {"PaymentFailed", "OrderCancelled"} <= set(types)
    assert "OrderShipped" not in types
    assert Stock.objects.get(product_id=456).on_hand == 50
    assert Payment.objects.get(order_id=order.pk).status == Payment.Status.DECLINED
    assert SentNotification.objects.get(order_id=order.pk).kind == "cancelled"


def test_too_little_stock_cancels_and_refunds_the_payment(stack, client, customer, make_product):
    make_product(pk=456, stock=2)
    response = post_order(client, {**ARTICLE_ORDER, "quantity": 3})
    order = wait_terminal(response.json()["orderId"])

    assert order.status == OrderStatus.CANCELLED
    types = set(event_types(order.pk))
    assert {"InventoryRejected", "PaymentRefunded", "OrderCancelled"} <= types
    assert Stock.objects.get(product_id=456).on_hand == 2
    payment = Payment.objects.get(order_id=order.pk)
    assert payment.status in (Payment.Status.REFUNDED, Payment.Status.VOID)


def test_every_event_delivered_twice_changes_nothing(stack, client, customer, product):
    order_id = post_order(client).json()["orderId"]
    wait_terminal(order_id)
    before = event_types(order_id)

    outbox_flush(Event.objects.filter(order_id=order_id))
    outbox_flush(Event.objects.filter(order_id=order_id))
    wait_drained()

    assert event_types(order_id) == before
    assert Payment.objects.filter(order_id=order_id).count() == 1
    assert Stock.objects.get(product_id=456).on_hand == 49
    assert SentNotification.objects.filter(order_id=order_id).count() == 1


def test_duplicates_while_the_order_is_in_flight_change_nothing(stack, client, customer, product):
    order_id = post_order(client).json()["orderId"]
    created = Event.objects.filter(order_id=order_id)
    outbox_flush(created)
    outbox_flush(created)
    wait_terminal(order_id)
    wait_drained()

    assert Counter(event_types(order_id)) == Counter(SHIPPED_JOURNEY)
    assert Payment.objects.filter(order_id=order_id).count() == 1
    assert Stock.objects.get(product_id=456).on_hand == 49


def test_an_event_no_service_is_subscribed_to_counts_as_sent_without_the_broker(
    stack, client, customer, product, broker_proxy
):
    order_id = post_order(client).json()["orderId"]
    wait_terminal(order_id)
    unheard = list(
        Event.objects.filter(order_id=order_id, type__in=["OrderConfirmed", "NotificationSent"])
    )
    heard = Event.objects.get(order_id=order_id, type="PaymentProcessed")
    broker_proxy.stop()
    try:
        sent = outbox_flush([heard, *unheard])
    finally:
        broker_proxy.start()

    assert len(unheard) == 2
    assert sent == sorted(e.seq for e in unheard)


def test_an_event_stored_while_the_broker_is_down_is_sent_by_the_relay(
    stack, client, customer, product, broker_proxy
):
    broker_proxy.stop()
    try:
        response = post_order(client)
        assert response.status_code == 202
        order_id = response.json()["orderId"]
        created = Event.objects.get(order_id=order_id, type="OrderCreated")
        assert created.published_at is None
        time.sleep(0.5)
        assert event_types(order_id) == ["OrderCreated"]
    finally:
        broker_proxy.start()

    wait_for(lambda: outbox_relay(older_than_s=0) or Event.objects.get(pk=created.pk).published_at)
    order = wait_terminal(order_id)
    assert order.status == OrderStatus.SHIPPED


def test_every_event_the_broker_took_is_marked_published_and_the_relay_sends_none_again(
    stack, client, customer, product
):
    order_id = post_order(client).json()["orderId"]
    wait_terminal(order_id)

    wait_for(lambda: not Event.objects.filter(order_id=order_id, published_at=None).exists())
    events = Event.objects.filter(order_id=order_id)
    assert all(e.occurred_at <= e.published_at for e in events)
    assert outbox_relay(older_than_s=0) == 0


def test_the_same_idempotency_key_makes_one_order(stack, client, customer, product):
    first = post_order(client, **{"Idempotency-Key": "buy-now-1"})
    second = post_order(client, **{"Idempotency-Key": "buy-now-1"})

    assert first.status_code == second.status_code == 202
    assert first.json()["orderId"] == second.json()["orderId"]
    assert second["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    wait_terminal(first.json()["orderId"])
    assert Payment.objects.count() == 1


def test_concurrent_orders_for_scarce_stock_never_oversell(stack, customer, make_product):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from django.test import Client

    make_product(pk=456, stock=5)

    def buy(_: int) -> int:
        try:
            return post_order(Client()).json()["orderId"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        order_ids = list(pool.map(buy, range(20)))

    orders = [wait_terminal(order_id, timeout=60) for order_id in order_ids]
    statuses = Counter(order.status for order in orders)
    assert statuses == {OrderStatus.SHIPPED: 5, OrderStatus.CANCELLED: 15}
    assert Stock.objects.get(product_id=456).on_hand == 0
    assert Payment.objects.filter(status=Payment.Status.CHARGED).count() == 5
