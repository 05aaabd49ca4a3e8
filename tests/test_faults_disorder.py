"""Duplicates and disorder: every event delivered two or three times, in shuffled order, has the
effects of one ordered delivery. In-process through the real consumers (tests/bus_sim.py); the
real-broker version is in tests/test_faults_stack.py.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from checkout_site.console.consistency import consistency_check
from orders.contract import OrderRequest
from orders.models import Customer, Order, Product
from orders.placement import order_place
from services.bus.consumer import Outcome
from services.bus.models import Event
from services.inventory.models import Reservation, Stock
from services.notification.models import SentNotification
from services.payment.models import Payment
from tests.bus_sim import InProcessBus

pytestmark = pytest.mark.django_db

# (token, quantity) on a product of stock 3: shipped, declined, out of stock, both.
SCENARIOS = [("tok_abc123", 2), ("tok_declined", 1), ("tok_abc123", 4), ("tok_declined", 5)]


def _orders_on_fresh_products(first_product_id: int) -> list[int]:
    Customer.objects.get_or_create(pk=123, defaults={"name": "Ada", "email": "ada@example.com"})
    order_ids = []
    for offset, (token, quantity) in enumerate(SCENARIOS):
        pk = first_product_id + offset
        Product.objects.create(pk=pk, name=f"P{pk}", price=Decimal("10.00"), stock=3)
        Stock.objects.create(product_id=pk, on_hand=3, initial=3)
        request = OrderRequest(userId=123, productId=pk, quantity=quantity, paymentToken=token)
        order_ids.append(order_place(request=request)[0].pk)
    return order_ids


def _effects(order_id: int) -> dict[str, Any]:
    """What the customer and the shop see of an order, whichever path its events took."""
    order = Order.objects.get(pk=order_id)
    payment = Payment.objects.filter(order_id=order_id).first()
    reservation = Reservation.objects.filter(order_id=order_id).first()
    held = reservation is not None and reservation.state == Reservation.State.RESERVED
    types = _types(order_id)
    return {
        "status": order.status,
        "money kept": payment.amount if payment and payment.status == "CHARGED" else None,
        "stock held": reservation.quantity if held else 0,
        "stock on hand": Stock.objects.get(product_id=order.product_id).on_hand,
        "stock shown": Product.objects.get(pk=order.product_id).stock,
        "emails": sorted(SentNotification.objects.filter(order_id=order_id).values_list("kind")),
        "events doubled": sorted(t for t in set(types) if types.count(t) > 1),
    }


def _types(order_id: int) -> list[str]:
    return list(Event.objects.filter(order_id=order_id).values_list("type", flat=True))


@pytest.mark.parametrize("seed", range(25))
def test_shuffled_triple_delivery_has_the_effects_of_one_ordered_delivery(customer, seed):
    ordered = _orders_on_fresh_products(500)
    InProcessBus().drain()
    shuffled = _orders_on_fresh_products(600)
    bus = InProcessBus(seed=seed, order_ids=shuffled)

    bus.drain(shuffle=True, copies=3)

    assert [_effects(o) for o in shuffled] == [_effects(o) for o in ordered]
    assert [Order.objects.get(pk=o).status for o in ordered] == [
        "SHIPPED",
        "CANCELLED",
        "CANCELLED",
        "CANCELLED",
    ]
    assert bus.outcomes[Outcome.DUPLICATE] == 2 * bus.outcomes[Outcome.HANDLED]
    assert consistency_check(deadline_s=0).violations == []


def test_a_release_before_its_reservation_voids_it_and_no_stock_is_taken(customer, make_product):
    make_product(pk=456, stock=3)
    request = OrderRequest(userId=123, productId=456, quantity=2, paymentToken="tok_declined")
    order_id = order_place(request=request)[0].pk
    bus = InProcessBus()
    created = Event.objects.get(order_id=order_id, type="OrderCreated")
    bus.deliver("payment", created)
    failed = Event.objects.get(order_id=order_id, type="PaymentFailed")

    bus.deliver("inventory", failed)
    bus.deliver("inventory", created)
    bus.drain()

    assert Reservation.objects.get(order_id=order_id).state == Reservation.State.VOID
    assert Stock.objects.get(product_id=456).on_hand == 3
    assert Order.objects.get(pk=order_id).status == "CANCELLED"
    assert "InventoryUpdated" not in _types(order_id)


def test_a_refund_before_its_charge_voids_it_and_nothing_is_charged(customer, make_product):
    make_product(pk=456, stock=1)
    request = OrderRequest(userId=123, productId=456, quantity=2, paymentToken="tok_abc123")
    order_id = order_place(request=request)[0].pk
    bus = InProcessBus()
    created = Event.objects.get(order_id=order_id, type="OrderCreated")
    bus.deliver("inventory", created)
    rejected = Event.objects.get(order_id=order_id, type="InventoryRejected")

    bus.deliver("payment", rejected)
    bus.deliver("payment", created)
    bus.drain()

    assert Payment.objects.get(order_id=order_id).status == Payment.Status.VOID
    assert "PaymentProcessed" not in _types(order_id)
    assert Order.objects.get(pk=order_id).status == "CANCELLED"
    assert consistency_check(deadline_s=0).clean


def test_shipping_news_before_the_confirmation_still_ends_shipped_and_confirmed(
    customer, make_product
):
    make_product(pk=456, stock=3)
    request = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    order_id = order_place(request=request)[0].pk
    bus = InProcessBus()
    created = Event.objects.get(order_id=order_id, type="OrderCreated")
    for service in ("payment", "inventory"):
        bus.deliver(service, created)
    for type_ in ("PaymentProcessed", "InventoryUpdated"):
        bus.deliver("notification", Event.objects.get(order_id=order_id, type=type_))
    shipped = Event.objects.get(order_id=order_id, type="OrderShipped")

    bus.deliver("orders", shipped)

    assert Order.objects.get(pk=order_id).status == "SHIPPED"
    assert "OrderConfirmed" in _types(order_id)
    bus.drain(shuffle=True, copies=2)
    assert Order.objects.get(pk=order_id).status == "SHIPPED"
    assert consistency_check(deadline_s=0).clean
