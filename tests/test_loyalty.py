"""The loyalty service through the real consumer, in-process: a shipped order earns its
customer points once, from facts in the log; the fold and the order service's read model."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from checkout_site.console.consistency import ledger
from checkout_site.console.levers import LeverWish, lever_set
from orders.aggregator import status_fold
from orders.contract import OrderRequest
from orders.models import Customer, Order, OrderStatus
from orders.placement import order_place
from services.bus import hooks
from services.bus.consumer import Outcome, event_consume
from services.bus.models import Event
from services.loyalty.models import PointsAward
from services.loyalty.points import points_for
from tests.bus_sim import InProcessBus

pytestmark = pytest.mark.django_db


def _subscribe(value: str = "on") -> None:
    wish = LeverWish(
        lever="subscription", service="loyalty", value=value, event_type="OrderShipped"
    )
    lever_set(wish, by="test")


def _ship(quantity: int = 1) -> Order:
    request = OrderRequest(userId=123, productId=456, quantity=quantity, paymentToken="tok_abc123")
    order, _ = order_place(request=request)
    InProcessBus(order_ids=[order.pk]).drain()
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def no_guard() -> Iterator[None]:
    before = list(hooks._policy)
    hooks.policy_use(
        lambda service: hooks.Policy(inbox=False, effect_checked=False, effect_unique=False)
    )
    yield
    hooks._policy[:] = before


def test_one_point_per_whole_unit_of_the_amount():
    assert [points_for(Decimal(a)) for a in ("89.00", "89.99", "0.50", "178.00")] == [
        89,
        89,
        0,
        178,
    ]


def test_unsubscribed_by_default_a_shipped_order_earns_nothing(customer, product):
    order = _ship()

    assert order.status == OrderStatus.SHIPPED
    assert not PointsAward.objects.exists()
    assert not Event.objects.filter(type="PointsAwarded").exists()
    assert Customer.objects.get(pk=123).points == 0


def test_subscribed_a_shipped_order_awards_points_and_the_shop_learns_the_total(customer, product):
    _subscribe()

    order = _ship(quantity=2)
    second = _ship()

    award = PointsAward.objects.get(order_id=order.pk)
    assert (award.customer_id, award.points) == (123, 178)
    awarded = Event.objects.get(order_id=second.pk, type="PointsAwarded")
    assert awarded.producer == "loyalty"
    assert awarded.payload == {"customerId": 123, "points": 89, "totalPoints": 267}
    shipped = Event.objects.get(order_id=second.pk, type="OrderShipped")
    assert awarded.causation_id == shipped.event_id
    assert Customer.objects.get(pk=123).points == 267
    assert Order.objects.get(pk=second.pk).status == OrderStatus.SHIPPED
    assert ledger()["healthy"], ledger()["violations"]


def test_a_second_delivery_awards_nothing(customer, product):
    order = _ship()
    shipped = Event.objects.get(order_id=order.pk, type="OrderShipped")

    outcomes = [
        event_consume(service="loyalty", data=shipped.envelope(), attempt=n) for n in (1, 2)
    ]

    assert outcomes == [Outcome.HANDLED, Outcome.DUPLICATE]
    assert PointsAward.objects.filter(order_id=order.pk).count() == 1
    assert Event.objects.filter(order_id=order.pk, type="PointsAwarded").count() == 1


def test_after_an_unsubscription_a_delivery_already_queued_is_handled_and_new_ones_stop(
    customer, product
):
    order = _ship()
    # Sent to loyalty's queue while it was subscribed, still waiting there when it unsubscribes.
    queued = Event.objects.get(order_id=order.pk, type="OrderShipped").envelope()
    _subscribe()
    _subscribe("off")

    # What was in flight finishes: the consumer runs what the code handles, subscribed or not.
    outcome = event_consume(service="loyalty", data=queued)
    fresh = _ship()

    assert outcome == Outcome.HANDLED
    assert PointsAward.objects.get(order_id=order.pk).points == 89
    assert not PointsAward.objects.filter(order_id=fresh.pk).exists()
    assert not Event.objects.filter(order_id=fresh.pk, type="PointsAwarded").exists()


def test_with_no_guard_a_repeat_awards_twice_and_the_ledger_names_it(customer, product, no_guard):
    order = _ship()
    shipped = Event.objects.get(order_id=order.pk, type="OrderShipped")

    for attempt in (1, 2):
        event_consume(service="loyalty", data=shipped.envelope(), attempt=attempt)

    assert PointsAward.objects.filter(order_id=order.pk).count() == 2
    named = [v for v in ledger()["violations"] if v["invariant"] == "one_award_per_order"]
    assert [v["orderId"] for v in named] == [order.pk]


def test_the_fold_ignores_points_awarded():
    shipped = ["OrderCreated", "PaymentProcessed", "InventoryUpdated", "OrderConfirmed"]
    shipped += ["NotificationSent", "OrderShipped"]

    assert status_fold([*shipped, "PointsAwarded"]) == OrderStatus.SHIPPED
    assert status_fold(["PointsAwarded", *shipped]) == status_fold(shipped)
    assert status_fold(["OrderCreated", "PointsAwarded"]) == OrderStatus.INITIATED


def test_an_older_points_awarded_does_not_move_the_shop_back(customer, product):
    from orders.handlers import points_project
    from services.bus.schemas import Envelope, PointsAwarded

    def awarded(seq: int, total: int) -> None:
        envelope = Envelope(
            seq=seq,
            eventId=f"00000000-0000-4000-8000-{seq:012d}",
            type="PointsAwarded",
            version=1,
            orderId=1,
            occurredAt="2026-12-01T12:00:00Z",
            producer="loyalty",
            causationId=None,
            payload={},
        )
        points_project(envelope, PointsAwarded(customerId=123, points=1, totalPoints=total))

    awarded(20, 178)
    awarded(10, 89)

    assert Customer.objects.values_list("points", "points_seq").get(pk=123) == (178, 20)
