"""The notification service: the article's join of payment and stock, and the address it mails,
read from the order's OrderCreated in the log (services/notification/handlers.py)."""

from __future__ import annotations

import pytest
from django.db import transaction

from orders.contract import OrderRequest
from orders.placement import order_place
from services.bus import schemas
from services.bus.consumer import event_consume
from services.bus.history import NotInLog, order_event
from services.bus.models import Delivery, Event
from services.bus.outbox import event_emit
from services.notification.models import Join, SentNotification
from tests.bus_sim import InProcessBus
from tests.schema_fixtures import FIXTURES

pytestmark = pytest.mark.django_db


def _placed() -> int:
    request = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    order, _ = order_place(request=request)
    return order.pk


def test_the_confirmation_goes_to_the_address_the_order_was_placed_with(
    customer, product, mailoutbox
):
    order_id = _placed()
    customer.email = "changed.later@example.com"
    customer.save()

    InProcessBus(order_ids=[order_id]).drain()

    assert [m.to for m in mailoutbox] == [["ada@example.com"]]
    assert SentNotification.objects.get(order_id=order_id).to == "ada@example.com"
    assert Event.objects.filter(order_id=order_id, type="OrderShipped").exists()


def test_notification_takes_the_two_halves_and_no_delivery_of_the_new_order(customer, product):
    order_id = _placed()

    InProcessBus(order_ids=[order_id]).drain()

    handled = Delivery.objects.filter(service="notification", order_id=order_id)
    assert sorted(handled.values_list("event_type", flat=True)) == [
        "InventoryUpdated",
        "PaymentProcessed",
    ]
    assert Delivery.objects.filter(order_id=order_id).count() == 7


def test_a_cancellation_is_mailed_to_the_address_of_an_order_created_as_v1(db, mailoutbox):
    written = {**FIXTURES[("OrderCreated", 1)][0], "customerEmail": "v1.writer@example.com"}
    with transaction.atomic():
        event_emit(
            order_id=77, payload=schemas.payload_class("OrderCreated", 1).model_validate(written)
        )
        cancelled = event_emit(order_id=77, payload=schemas.OrderCancelled(reason="no stock"))

    event_consume(service="notification", data=cancelled.envelope())

    assert [m.to for m in mailoutbox] == [["v1.writer@example.com"]]
    assert "no stock" in mailoutbox[0].body


def test_an_order_with_no_order_created_in_the_log_is_not_mailed_and_says_why(db, mailoutbox):
    with transaction.atomic():
        cancelled = event_emit(order_id=78, payload=schemas.OrderCancelled(reason="no stock"))

    with pytest.raises(NotInLog, match="no OrderCreated in the log for order 78"):
        event_consume(service="notification", data=cancelled.envelope())
    assert mailoutbox == []
    assert not SentNotification.objects.exists()


def test_the_log_answers_the_first_event_of_a_type_as_its_newest_version(db):
    with transaction.atomic():
        event_emit(
            order_id=79,
            payload=schemas.payload_class("OrderCreated", 1).model_validate(
                FIXTURES[("OrderCreated", 1)][0]
            ),
        )

    created = order_event(79, "OrderCreated")

    assert type(created) is schemas.payload_class("OrderCreated")
    assert created.customerEmail == FIXTURES[("OrderCreated", 1)][0]["customerEmail"]


def _join_states(heard: list[schemas.Payload]) -> list[tuple[bool, bool, str]]:
    from services.notification.handlers import _join_record

    states = []
    with transaction.atomic():
        for payload in heard:
            join = _join_record(80, payload)
            stored = Join.objects.get(order_id=80)
            assert (stored.payment_ok, stored.inventory_ok, stored.cancelled_reason) == (
                join.payment_ok,
                join.inventory_ok,
                join.cancelled_reason,
            ), "what the join answers is what it stored"
            states.append((join.payment_ok, join.inventory_ok, join.cancelled_reason))
    return states


PAID = schemas.PaymentProcessed(paymentId=1, amount="89.00", tokenLast4="c123")
RESERVED = schemas.InventoryUpdated(productId=456, quantity=1, stockAfter=49)


@pytest.mark.parametrize("first, second", [(PAID, RESERVED), (RESERVED, PAID)])
def test_the_join_answers_each_half_as_it_stands_in_either_order(db, first, second):
    states = _join_states([first, second, first])

    assert states[0] == (first is PAID, first is RESERVED, "")
    assert states[1:] == [(True, True, ""), (True, True, "")]
    assert Join.objects.count() == 1


def test_a_cancellation_keeps_what_the_join_heard_before(db):
    states = _join_states([PAID, schemas.OrderCancelled(reason="out of stock")])

    assert states == [(True, False, ""), (True, False, "out of stock")]
