"""The schema lever on the real stack: a real worker on real Redis queues.

Orders placed while the producer emits OrderCreated v1, then after it is switched to v2 from the
control endpoint, then after it is switched back: every one reaches SHIPPED, each event keeps the
version it was written with, and every consumer on the worker handled both.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from checkout_site.console.consistency import ledger
from orders.models import OrderStatus
from services.bus.models import Delivery, Event
from services.bus.registry import subscribers_of
from services.payment.models import Payment
from tests.helpers import post_order, wait_drained, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("services_restored"),
]


def _switch(staff_client, version: int) -> None:
    response = staff_client.post(
        "/control/levers",
        data={"lever": "schema", "eventType": "OrderCreated", "version": version},
        content_type="application/json",
        headers={"X-CSRFToken": staff_client.cookies["csrftoken"].value},
    )
    assert response.status_code == 200
    assert response.json()["schemas"] == {"OrderCreated": version}


def _place(client, count: int) -> list[int]:
    return [post_order(client).json()["orderId"] for _ in range(count)]


def test_v2_orders_ship_beside_the_v1_orders_placed_before(
    stack, client, staff_client, customer, product
):
    before = _place(client, 2)
    for order_id in before:
        wait_terminal(order_id)

    _switch(staff_client, 2)
    after = _place(client, 3)
    _switch(staff_client, 1)
    back = _place(client, 1)

    orders = [*before, *after, *back]
    for order_id in orders:
        assert wait_terminal(order_id, timeout=30).status == OrderStatus.SHIPPED
    wait_drained()
    created = {
        e.order_id: e for e in Event.objects.filter(type="OrderCreated", order_id__in=orders)
    }
    assert [created[o].version for o in orders] == [1, 1, 2, 2, 2, 1]
    for order_id in after:
        assert created[order_id].payload["customerId"] == 123
        assert created[order_id].payload["amount"] == {"value": "89.00", "currency": "USD"}
    for order_id in (*before, *back):
        assert created[order_id].payload["userId"] == 123
    for order_id in orders:
        assert Payment.objects.get(order_id=order_id).amount == Decimal("89.00")
        handled = Delivery.objects.filter(
            order_id=order_id, event_type="OrderCreated", status=Delivery.Status.HANDLED
        )
        assert sorted(handled.values_list("service", flat=True)) == sorted(
            subscribers_of("OrderCreated")
        )
    book = ledger()
    assert book["healthy"], book["violations"]
