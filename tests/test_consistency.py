"""check_consistency: clean books pass; each kind of broken book is named, and the command fails."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from checkout_site.console.consistency import consistency_check
from orders.contract import OrderRequest
from orders.models import Order
from orders.placement import order_place
from services.bus.models import Event
from services.inventory.models import Reservation, Stock
from services.notification.models import SentNotification
from services.payment.models import Payment
from tests.bus_sim import InProcessBus

pytestmark = pytest.mark.django_db


def _place(quantity: int = 1, token: str = "tok_abc123") -> int:
    request = OrderRequest(userId=123, productId=456, quantity=quantity, paymentToken=token)
    order, _ = order_place(request=request)
    return order.pk


@pytest.fixture
def books(customer, make_product):
    """Three finished orders: one shipped, one declined, one out of stock; one more in flight."""
    make_product(pk=456, stock=5)
    shipped = _place(quantity=2)
    declined = _place(token="tok_declined")
    too_many = _place(quantity=4)
    InProcessBus().drain()
    in_flight = _place()
    return {"shipped": shipped, "declined": declined, "too_many": too_many, "in_flight": in_flight}


def _problems(order_id: int, deadline_s: float | None = None) -> list[str]:
    report = consistency_check(deadline_s=deadline_s)
    return [v.problem for v in report.violations if v.order_id == order_id]


def test_finished_books_are_clean_and_the_command_says_so(books):
    assert Order.objects.get(pk=books["shipped"]).status == "SHIPPED"
    assert Order.objects.get(pk=books["declined"]).status == "CANCELLED"
    assert Order.objects.get(pk=books["too_many"]).status == "CANCELLED"
    out = StringIO()

    call_command("check_consistency", stdout=out)

    report = consistency_check()
    assert report.clean and report.orders == 4 and report.in_flight == 1
    assert "0 violations" in out.getvalue()


def test_an_order_past_its_deadline_is_named_and_the_command_fails(books):
    out = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("check_consistency", "--deadline", "0", stdout=out)

    assert f"orders: {books['in_flight']}" in str(failure.value)
    assert f"order {books['in_flight']}: still INITIATED (has OrderCreated)" in out.getvalue()


def test_a_charge_kept_on_a_cancelled_order_is_a_violation(books):
    Payment.objects.filter(order_id=books["too_many"]).update(status=Payment.Status.CHARGED)

    assert _problems(books["too_many"]) == ["cancelled but payment is CHARGED (no refund)"]


def test_a_shipped_order_without_its_charge_is_a_violation(books):
    Payment.objects.filter(order_id=books["shipped"]).delete()

    assert _problems(books["shipped"]) == ["shipped but payment is missing"]


def test_stock_taken_without_a_reservation_is_a_violation(books):
    Stock.objects.filter(product_id=456).update(on_hand=1)

    report = consistency_check()
    assert [str(v) for v in report.violations] == [
        "product 456: on hand 1 + reserved 2 != initial 5"
    ]


def test_a_reservation_kept_for_a_cancelled_order_is_a_violation(books):
    Reservation.objects.filter(order_id=books["declined"]).update(state="RESERVED")

    problems = _problems(books["declined"])
    assert "cancelled but stock is still RESERVED" in problems


def test_a_doubled_event_is_a_violation_even_within_the_deadline(books):
    original = Event.objects.get(order_id=books["shipped"], type="PaymentProcessed")
    Event.objects.create(
        type=original.type,
        version=original.version,
        order_id=original.order_id,
        occurred_at=timezone.now(),
        producer=original.producer,
        payload=original.payload,
        published_at=timezone.now(),
    )

    assert _problems(books["shipped"]) == ["PaymentProcessed recorded 2 times"]


def test_a_stored_status_that_is_not_the_fold_is_a_violation(books):
    Order.objects.filter(pk=books["declined"]).update(status="SHIPPED")

    problems = _problems(books["declined"])
    assert "stored status SHIPPED but its events fold to CANCELLED" in problems


def test_a_shipped_order_whose_customer_got_no_email_is_a_violation(books):
    SentNotification.objects.filter(order_id=books["shipped"]).delete()

    assert _problems(books["shipped"]) == ["shipped but no confirmation email"]


def test_a_cancelled_order_may_wait_for_its_email_until_the_deadline(books):
    SentNotification.objects.filter(order_id=books["declined"]).delete()

    assert _problems(books["declined"]) == []
    assert _problems(books["declined"], deadline_s=0) == ["cancelled but the customer was not told"]


def test_request_response_orders_keep_clean_books(client, customer, make_product):
    make_product(pk=456, stock=2)
    for token, quantity in (("tok_abc123", 1), ("tok_declined", 1), ("tok_abc123", 2)):
        body = {"userId": 123, "productId": 456, "quantity": quantity, "paymentToken": token}
        assert (
            client.post("/orders/sync", data=body, content_type="application/json").status_code
            == 201
        )

    report = consistency_check(deadline_s=0)

    assert [o.status for o in Order.objects.order_by("pk")] == ["SHIPPED", "CANCELLED", "CANCELLED"]
    assert report.clean, [str(v) for v in report.violations]
