"""GET /control/ledger: the invariants on hand-made tables, each violation naming its order."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from checkout_site.console.consistency import INVARIANTS, ledger
from orders.contract import OrderRequest
from orders.models import Order
from orders.placement import order_place
from services.bus.models import Delivery, Event
from services.inventory.models import Reservation, Stock
from services.notification.models import SentNotification
from services.payment.models import Payment
from tests.bus_sim import InProcessBus
from tests.helpers import user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped(customer, product) -> int:
    request = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    order, _ = order_place(request=request)
    InProcessBus().drain()
    return order.pk


def _named(book: dict, invariant: str) -> list[tuple[int | None, str]]:
    return [(v["orderId"], v["detail"]) for v in book["violations"] if v["invariant"] == invariant]


def test_a_finished_order_leaves_a_healthy_ledger(shipped):
    book = ledger()

    assert book["healthy"] and book["violations"] == []
    assert set(book["invariants"]) == set(INVARIANTS)
    assert book["subscribers"]["payment"] == {
        "handled": 1,
        "waiting": 0,
        "deadLettered": 0,
        "overdue": 0,
    }


def test_the_whole_ledger_counts_every_orders_events_and_every_products_stock(
    shipped, make_product
):
    make_product(pk=457, stock=5)
    order_place(request=OrderRequest(userId=123, productId=457, quantity=1, paymentToken="tok_x1"))
    InProcessBus().drain()
    # A stock out of step with its reservations, on the first order's product: the whole ledger
    # checks it even though another order was checked last.
    Stock.objects.filter(product_id=456).update(on_hand=7)

    book = ledger()

    assert book["subscribers"]["payment"]["handled"] == 2
    assert [v["invariant"] for v in book["violations"]] == ["stock_balanced"]


def test_a_second_charge_is_named_with_its_order(shipped):
    Payment.objects.create(
        order_id=shipped, amount=Decimal("89.00"), status="CHARGED", guarded=False
    )

    book = ledger()

    assert not book["healthy"]
    assert _named(book, "one_charge_per_order") == [
        (shipped, f"order {shipped}: charged 2 times (178.00 in all), net of refunds")
    ]


def test_a_refunded_second_charge_is_not_a_double_charge(shipped):
    Payment.objects.create(
        order_id=shipped, amount=Decimal("89.00"), status="REFUNDED", guarded=False
    )

    assert _named(ledger(), "one_charge_per_order") == []


def test_a_second_reservation_and_a_second_email_are_named(shipped):
    Reservation.objects.create(
        order_id=shipped, product_id=456, quantity=1, state="RESERVED", guarded=False
    )
    SentNotification.objects.create(
        order_id=shipped, kind="confirmed", to="a@example.com", subject="x", body="y", guarded=False
    )

    book = ledger()

    assert [o for o, _ in _named(book, "one_reservation_per_order")] == [shipped]
    assert [o for o, _ in _named(book, "one_email_per_kind")] == [shipped]
    # The second reservation holds a unit the shelf never gave: the books no longer balance.
    assert _named(book, "stock_balanced") == [
        (None, "product 456: on hand 49 + reserved 2 != initial 50")
    ]


def test_an_event_no_subscriber_handled_by_the_deadline_is_named_as_overdue(shipped):
    lost = Event.objects.create(
        type="PaymentRefunded",
        version=1,
        order_id=shipped,
        occurred_at=timezone.now() - timedelta(hours=1),
        producer="payment",
        payload={"amount": "89.00", "reason": "x"},
        published_at=timezone.now(),
    )

    book = ledger()

    overdue = _named(book, "every_event_settled")
    assert [o for o, _ in overdue] == [shipped] * len(overdue) and overdue
    assert f"PaymentRefunded #{lost.seq}" in overdue[0][1]
    assert sum(counts["overdue"] for counts in book["subscribers"].values()) == len(overdue)


def test_an_event_still_within_its_deadline_is_waiting_not_lost(shipped):
    Event.objects.create(
        type="PaymentRefunded",
        version=1,
        order_id=shipped,
        occurred_at=timezone.now(),
        producer="payment",
        payload={"amount": "89.00", "reason": "x"},
        published_at=timezone.now(),
    )

    book = ledger()

    assert _named(book, "every_event_settled") == []
    assert sum(counts["waiting"] for counts in book["subscribers"].values()) >= 1


def test_duplicates_suppressed_is_the_sum_over_every_delivery(shipped):
    Delivery.objects.filter(order_id=shipped, service="payment").update(duplicates=2)
    Delivery.objects.filter(order_id=shipped, service="inventory").update(duplicates=1)

    assert ledger()["duplicatesSuppressed"] == 3


def test_the_endpoint_is_staff_only(shipped, client):
    assert client.get("/control/ledger").status_code == 403

    staff = Client()
    staff.force_login(user_make("op", staff=True))
    Payment.objects.create(
        order_id=shipped, amount=Decimal("89.00"), status="CHARGED", guarded=False
    )
    body = staff.get("/control/ledger").json()

    assert body["healthy"] is False
    assert {"invariant": "one_charge_per_order", "orderId": shipped} in [
        {k: v[k] for k in ("invariant", "orderId")} for v in body["violations"]
    ]


def test_an_unknown_event_id_in_an_inbox_changes_nothing(shipped):
    # The inbox may hold ids of events that are not in the log (tests, pruned logs).
    from services.payment.models import PaymentInbox

    PaymentInbox.objects.create(event_id=uuid.uuid4(), event_type="OrderCreated", order_id=shipped)

    assert ledger()["healthy"]


# --- One order's verdict (GET /control/ledger?order=<id>) -----------------------------------------


def _staff() -> Client:
    staff = Client()
    staff.force_login(user_make("op", staff=True))
    return staff


def test_one_shipped_order_has_a_healthy_verdict_of_its_own(shipped):
    body = _staff().get(f"/control/ledger?order={shipped}").json()

    assert body["healthy"] and body["violations"] == []
    assert body["orders"] == 1
    assert body["order"]["orderId"] == shipped and body["order"]["status"] == "SHIPPED"
    assert body["order"]["charges"]["charged"] == 1
    assert body["order"]["charges"]["chargedAmount"] == body["order"]["charges"]["orderAmount"]
    assert body["order"]["reservations"] == {
        "reserved": 1,
        "released": 0,
        "rejected": 0,
        "void": 0,
        "unitsHeld": 1,
        "quantity": 1,
    }
    assert body["order"]["emails"] == {"confirmed": 1, "cancelled": 0}
    assert body["subscribers"]["payment"]["handled"] == 1
    assert body["subscribers"]["orders"]["handled"] == 3
    assert "order" not in ledger(), "the whole ledger names no one order"


def test_an_order_charged_twice_is_named_in_its_own_verdict_and_not_in_another(
    shipped, customer, product
):
    other, _ = order_place(
        request=OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    )
    InProcessBus().drain()
    Payment.objects.create(
        order_id=shipped, amount=Decimal("89.00"), status="CHARGED", guarded=False
    )

    twice = ledger(order=Order.objects.get(pk=shipped))
    once = ledger(order=other)

    assert not twice["healthy"]
    assert _named(twice, "one_charge_per_order") == [
        (shipped, f"order {shipped}: charged 2 times (178.00 in all), net of refunds")
    ]
    assert twice["order"]["charges"]["charged"] == 2
    assert once["healthy"] and once["order"]["charges"]["charged"] == 1


def test_duplicates_suppressed_are_counted_for_the_order_alone(shipped):
    Delivery.objects.filter(order_id=shipped, service="payment").update(duplicates=2)
    Delivery.objects.create(
        event_id=uuid.uuid4(),
        service="payment",
        seq=9999,
        event_type="OrderCreated",
        order_id=shipped + 1,
        status="handled",
        duplicates=5,
        received_at=timezone.now(),
        settled_at=timezone.now(),
    )

    assert ledger(order=Order.objects.get(pk=shipped))["duplicatesSuppressed"] == 2
    assert ledger()["duplicatesSuppressed"] == 7


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [("order=", 422, "order"), ("order=abc", 422, "order"), ("order=-3", 422, "order")],
)
def test_a_bad_order_is_refused_naming_the_field(shipped, query, status, field):
    answer = _staff().get(f"/control/ledger?{query}")

    assert answer.status_code == status
    assert answer.json()["field"] == field


def test_an_unknown_order_is_404(shipped):
    staff = _staff()
    for order_id in (shipped + 1000, 10**18 - 1):
        answer = staff.get(f"/control/ledger?order={order_id}")
        assert answer.status_code == 404, order_id
        assert answer.json()["error"] == "unknown_order"


def test_one_orders_verdict_is_staff_only(shipped, client):
    answer = client.get(f"/control/ledger?order={shipped}")

    assert answer.status_code == 403
    assert "order" not in answer.json()
