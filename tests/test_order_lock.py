"""The order service's lock on an order must not block other services storing its events."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from orders.contract import OrderRequest
from orders.handlers import order_locked
from orders.placement import order_place
from services.bus import schemas
from services.bus.outbox import event_emit

pytestmark = pytest.mark.django_db(transaction=True)


def test_another_service_stores_an_event_of_an_order_the_order_service_has_locked(
    customer, product
):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: SQLite lets one transaction write at a time, whatever it locks")
    request = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    order, _ = order_place(request=request)
    stored = threading.Event()

    def payment_service() -> None:
        try:
            with transaction.atomic():
                paid = schemas.PaymentProcessed(paymentId=1, amount="89.00", tokenLast4="c123")
                event_emit(order_id=order.pk, payload=paid)
            stored.set()
        finally:
            connection.close()

    with transaction.atomic():
        order_locked(order.pk)
        other = threading.Thread(target=payment_service)
        other.start()
        # While the order service holds the order, the payment's event goes in: its foreign key
        # check must not wait for this transaction (it would, under FOR UPDATE).
        went_in = stored.wait(timeout=5)
    other.join(timeout=10)

    assert went_in


def test_the_order_service_holds_its_lock_until_commit(customer, product):
    """Two halves of a join: the second waits for the first's commit, then sees its status."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: SQLite lets one transaction write at a time, whatever it locks")
    from orders.models import Order

    request = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    order, _ = order_place(request=request)
    seen: list[str] = []

    def second_half() -> None:
        try:
            with transaction.atomic():
                seen.append(order_locked(order.pk))
        finally:
            connection.close()

    with transaction.atomic():
        assert order_locked(order.pk) == "INITIATED"
        other = threading.Thread(target=second_half)
        other.start()
        other.join(timeout=0.5)
        waited = other.is_alive()
        Order.objects.filter(pk=order.pk).update(status="CONFIRMED")
    other.join(timeout=10)

    assert waited, "the second locker did not wait for the first"
    assert seen == ["CONFIRMED"]
