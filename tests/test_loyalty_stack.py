"""The subscription lever on the real stack: a real worker on real Redis queues.

Loyalty ships subscribed to nothing, so orders shipped before it joins earn nothing. Subscribed
with a replay, it catches up on every OrderShipped in the log through its queue and inbox, and
each order earns its points once even when every delivery to loyalty is duplicated; later
orders earn theirs live. Unsubscribed, a new order ships and earns nothing: nothing is sent.
"""

from __future__ import annotations

import time

import pytest

from checkout_site.console.consistency import ledger
from checkout_site.console.faults import CACHE_SECONDS, fault_add
from checkout_site.console.levers import LeverWish, lever_set
from orders.models import Customer, OrderStatus
from services.bus.models import Delivery, Event
from services.loyalty.models import PointsAward
from tests.conftest import wait_for
from tests.helpers import post_order, wait_drained, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("services_restored"),
]


def _subscription(value: str, *, replay: bool = False) -> None:
    wish = LeverWish(
        lever="subscription",
        service="loyalty",
        value=value,
        event_type="OrderShipped",
        replay=replay,
    )
    lever_set(wish, by="test")


def _workers_see_it() -> None:
    time.sleep(CACHE_SECONDS + 0.3)


def _shipped(client) -> int:
    order = wait_terminal(post_order(client).json()["orderId"])
    assert order.status == OrderStatus.SHIPPED
    return order.pk


def test_subscribed_with_replay_earlier_orders_earn_points_once_even_with_duplicates(
    stack, client, customer, product
):
    earlier = [_shipped(client), _shipped(client)]
    wait_drained()
    assert not PointsAward.objects.exists()
    fault_add(service="loyalty", kind="duplicate")
    _workers_see_it()

    _subscription("on", replay=True)

    wait_for(lambda: PointsAward.objects.count() == 2)
    wait_for(
        lambda: (
            Delivery.objects.filter(
                service="loyalty", order_id__in=earlier, duplicates__gte=1
            ).count()
            == 2
        )
    )
    _workers_see_it()
    live = _shipped(client)
    wait_for(lambda: PointsAward.objects.filter(order_id=live).exists())
    wait_drained()

    awards = dict(PointsAward.objects.values_list("order_id", "points"))
    assert awards == {earlier[0]: 89, earlier[1]: 89, live: 89}
    awarded = Event.objects.filter(type="PointsAwarded").order_by("seq")
    # The replay is sent in seq order; two pool processes may take its two messages at once.
    assert sorted(e.order_id for e in awarded[:2]) == earlier
    assert awarded.last().order_id == live
    assert [e.payload["totalPoints"] for e in awarded] == [89, 178, 267]
    wait_for(lambda: Customer.objects.get(pk=123).points == 267)
    replayed = Delivery.objects.filter(service="loyalty", order_id__in=earlier)
    assert sorted(replayed.values_list("status", flat=True)) == ["handled", "handled"]
    book = ledger()
    assert book["healthy"], book["violations"]
    assert book["subscribers"]["loyalty"]["handled"] == 3


def test_unsubscribed_a_new_order_ships_and_earns_nothing(stack, client, customer, product):
    _subscription("on")
    _workers_see_it()
    first = _shipped(client)
    wait_for(lambda: PointsAward.objects.filter(order_id=first).exists())

    _subscription("off")
    _workers_see_it()
    later = _shipped(client)
    wait_drained()
    time.sleep(1)  # room for a delivery that should not come

    assert list(PointsAward.objects.values_list("order_id", flat=True)) == [first]
    assert not Event.objects.filter(order_id=later, type="PointsAwarded").exists()
    assert not Delivery.objects.filter(service="loyalty", order_id=later).exists()
    assert Customer.objects.get(pk=123).points == 89
    book = ledger()
    assert book["healthy"], book["violations"]
    assert book["subscribers"]["loyalty"] == {
        "handled": 0,
        "waiting": 0,
        "deadLettered": 0,
        "overdue": 0,
    }
