"""Every stored v1 OrderCreated still folds and replays: a log written before v2 existed is
delivered through the real consumers (in-process, tests/bus_sim.py) to SHIPPED, keeps the
version it was written with, folds to the same status, and renders on the order page and in
the feed. The producer switched to v2 ships beside it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from checkout_site.console.levers import LeverWish, lever_set
from orders.aggregator import status_fold
from orders.contract import OrderRequest
from orders.live import event_messages
from orders.models import Order, OrderStatus
from orders.placement import order_place
from orders.projections import projections_rebuild
from services.bus.models import Event
from services.payment.models import Payment
from tests.bus_sim import InProcessBus
from tests.schema_fixtures import ORDER_CREATED_V1

pytestmark = pytest.mark.django_db


def _old_order(customer, product) -> Order:
    """An order and its OrderCreated as an old database holds them: written as v1, by hand."""
    order = Order.objects.create(
        customer=customer,
        product=product,
        quantity=2,
        amount=Decimal("178.00"),
        payment_token_masked="tok_****c123",
    )
    Event.objects.create(
        type="OrderCreated",
        version=1,
        order_id=order.pk,
        occurred_at=timezone.now(),
        producer="orders",
        payload=dict(ORDER_CREATED_V1),
    )
    return order


def test_stored_v1_orders_replay_to_shipped_and_keep_their_version(customer, product):
    orders = [_old_order(customer, product) for _ in range(3)]

    InProcessBus(seed=1).drain(shuffle=True, copies=2)

    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.SHIPPED
        types = list(order.events.values_list("type", flat=True))
        assert status_fold(types) == OrderStatus.SHIPPED
        created = order.events.get(type="OrderCreated")
        assert (created.version, created.payload) == (1, ORDER_CREATED_V1)
        payment = Payment.objects.get(order_id=order.pk)
        assert (payment.status, payment.amount) == ("CHARGED", Decimal("178.00"))
    assert projections_rebuild(fix=False).differences == []


def test_a_v2_order_ships_beside_the_v1_orders_before_it(customer, product):
    old = _old_order(customer, product)
    lever_set(LeverWish(lever="schema", service="OrderCreated", value="2"), by="test")
    request = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    new, _ = order_place(request=request)

    InProcessBus(seed=2).drain(shuffle=True)

    created = {
        e.order_id: e
        for e in Event.objects.filter(type="OrderCreated", order_id__in=[old.pk, new.pk])
    }
    assert created[old.pk].version == 1 and "userId" in created[old.pk].payload
    assert created[new.pk].version == 2
    assert created[new.pk].payload["customerId"] == 123
    assert created[new.pk].payload["amount"] == {"value": "89.00", "currency": "USD"}
    for order in (old, new):
        order.refresh_from_db()
        assert order.status == OrderStatus.SHIPPED
    assert Payment.objects.get(order_id=new.pk).amount == Decimal("89.00")
    assert "current" not in event_messages([created[new.pk]])[0]


def test_the_order_page_and_the_feed_render_a_v1_order_with_its_version(customer, product):
    order = _old_order(customer, product)
    InProcessBus(seed=3).drain()

    page = Client().get(f"/orders/{order.pk}")
    body = Client().get(f"/orders/{order.pk}", headers={"Accept": "application/json"}).json()
    feed = event_messages(Event.objects.filter(order_id=order.pk))

    assert page.status_code == 200
    assert body["status"] == "SHIPPED"
    first = body["events"][0]
    assert (first["type"], first["version"]) == ("OrderCreated", 1)
    assert first["payload"]["userId"] == 123
    assert first["payload"]["customerEmail"] == "a***@example.com"
    assert first["payload"]["paymentToken"] == "tok_****c123"
    assert [m["event"]["version"] for m in feed][:1] == [1]
    assert feed[-1]["status"] == "SHIPPED"
    # A page reads the newest version only: the server sends the upcast beside what was written.
    assert feed[0]["current"]["customerId"] == 123
    assert feed[0]["current"]["amount"] == {"value": "178.00", "currency": "USD"}
    assert feed[0]["current"]["customerEmail"] == "a***@example.com"
    assert feed[0]["current"]["paymentToken"] == "tok_****c123"
    assert all("current" not in m for m in feed[1:])
    assert b"ada@example.com" not in page.content
