"""The levers on the real stack: a real worker on real Redis queues.

Idempotency off with a duplicate delivery charges twice, and the ledger names the order; on, the
inbox drops the copy; with only the database's constraint left, the copy fails on it, is retried
and dead-lettered, and the order is charged once. A crash fault kills the worker's pool process
inside the handler: at least once, the broker hands the message back and the order ships; at
most once, it was acknowledged on receipt and is lost, and the order is stuck. Prefork replaces
the dead process, so the session's worker lives on.
"""

from __future__ import annotations

import time

import pytest

from checkout_site.console.consistency import consistency_check, ledger
from checkout_site.console.faults import CACHE_SECONDS, fault_add, fault_remove
from checkout_site.console.levers import LeverWish, lever_set
from checkout_site.console.models import Crash
from orders.models import Order, OrderStatus
from services.bus.broker import queue_depths
from services.bus.models import DeadLetter, Delivery, Event
from services.inventory.models import Stock
from services.payment.models import Payment
from tests.conftest import wait_for
from tests.helpers import post_order, wait_drained, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("services_restored"),
]


def _pull(lever: str, service: str, value: str) -> None:
    lever_set(LeverWish(lever=lever, service=service, value=value), by="test")


def _workers_see_it() -> None:
    time.sleep(CACHE_SECONDS + 0.3)


def test_idempotency_off_and_a_duplicate_delivery_charge_twice_and_the_ledger_names_it(
    stack, client, customer, product
):
    _pull("idempotency", "payment", "off")
    fault_add(service="payment", kind="duplicate")
    _workers_see_it()

    order_id = post_order(client).json()["orderId"]

    wait_for(lambda: Payment.objects.filter(order_id=order_id).count() == 2)
    wait_terminal(order_id)
    wait_drained()
    assert [p.status for p in Payment.objects.filter(order_id=order_id)] == ["CHARGED"] * 2
    assert Event.objects.filter(order_id=order_id, type="PaymentProcessed").count() == 2
    book = ledger()
    assert not book["healthy"]
    charged = [v for v in book["violations"] if v["invariant"] == "one_charge_per_order"]
    assert [v["orderId"] for v in charged] == [order_id]
    assert (
        Delivery.objects.get(
            order_id=order_id, service="payment", event_type="OrderCreated"
        ).duplicates
        == 0
    )


def test_idempotency_on_and_a_duplicate_delivery_charge_once(stack, client, customer, product):
    fault_add(service="payment", kind="duplicate")
    _workers_see_it()

    order = wait_terminal(post_order(client).json()["orderId"])
    wait_for(
        lambda: Delivery.objects.filter(
            order_id=order.pk, service="payment", event_type="OrderCreated", duplicates=1
        ).exists()
    )

    assert order.status == OrderStatus.SHIPPED
    assert Payment.objects.filter(order_id=order.pk).count() == 1
    book = ledger()
    assert book["healthy"], book["violations"]
    assert book["duplicatesSuppressed"] >= 1


def test_with_only_the_constraint_left_a_duplicate_fails_is_retried_and_dead_lettered(
    stack, client, customer, product, settings
):
    _pull("idempotency", "payment", "constraint-only")
    fault_add(service="payment", kind="duplicate")
    _workers_see_it()

    order = wait_terminal(post_order(client).json()["orderId"])
    letter = wait_for(
        lambda: DeadLetter.objects.filter(order_id=order.pk, service="payment").first(),
        timeout=40,
    )

    assert order.status == OrderStatus.SHIPPED
    assert Payment.objects.filter(order_id=order.pk).count() == 1
    assert "IntegrityError" in letter.error
    assert letter.attempts == settings.DELIVERY_MAX_RETRIES + 1
    book = ledger()
    assert not [v for v in book["violations"] if v["invariant"] == "one_charge_per_order"]


def _crashes_shown(admin_client) -> list[dict]:
    return admin_client.get("/console/api/state").json()["crashes"]


def test_at_least_once_and_a_crash_in_the_handler_still_ship_the_order(
    stack, client, admin_client, customer, product
):
    fault_add(service="payment", kind="crash")
    _workers_see_it()

    order_id = post_order(client).json()["orderId"]

    order = wait_terminal(order_id, timeout=40)
    assert order.status == OrderStatus.SHIPPED
    crash = Crash.objects.get(order_id=order_id)
    assert crash.service == "payment"
    delivery = Delivery.objects.get(event_id=crash.event_id, service="payment")
    assert "came back after the crash" in delivery.faults
    assert Payment.objects.filter(order_id=order_id).count() == 1
    shown = _crashes_shown(admin_client)
    assert [(c["orderId"], c["eventType"], c["cameBack"]) for c in shown] == [
        (order_id, "OrderCreated", True)
    ]
    assert stack.process.poll() is None, "the session's worker died with its pool process"


def test_at_most_once_and_a_crash_in_the_handler_lose_the_event_and_the_order_is_stuck(
    stack, client, admin_client, customer, product
):
    _pull("delivery", "payment", "at-most-once")
    crash_fault = fault_add(service="payment", kind="crash")
    _workers_see_it()

    order_id = post_order(client).json()["orderId"]

    crash = wait_for(lambda: Crash.objects.filter(order_id=order_id).first(), timeout=20)
    wait_for(lambda: Stock.objects.get(product_id=456).on_hand == 49)
    time.sleep(3)  # long enough for a message given back to be handled again
    assert Order.objects.get(pk=order_id).status == OrderStatus.INITIATED
    assert not Payment.objects.filter(order_id=order_id).exists()
    assert not Delivery.objects.filter(event_id=crash.event_id, service="payment").exists()
    assert queue_depths()["payment"] == 0, "the message is not waiting: it is gone"
    lost = [
        v
        for v in consistency_check(deadline_s=0).violations
        if v.invariant == "every_event_settled" and v.order_id == order_id
    ]
    assert [v.problem.split(" #")[0] for v in lost] == ["OrderCreated"]
    assert "not handled by payment" in lost[0].problem
    assert [(c["orderId"], c["cameBack"]) for c in _crashes_shown(admin_client)] == [
        (order_id, False)
    ]

    # The worker lives on (prefork replaced the process): the next order goes through.
    fault_remove(fault_id=crash_fault.pk)
    _pull("delivery", "payment", "at-least-once")
    _workers_see_it()
    assert wait_terminal(post_order(client).json()["orderId"]).status == OrderStatus.SHIPPED
    assert stack.process.poll() is None
