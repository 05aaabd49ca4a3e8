"""The state aggregator: the status is the same for every arrival order and any repeats."""

from __future__ import annotations

from itertools import permutations

import pytest

from orders.aggregator import cancellation_due, confirmation_due, status_fold
from tests.helpers import SHIPPED_JOURNEY

DECLINED = [
    "OrderCreated",
    "PaymentFailed",
    "InventoryUpdated",
    "InventoryReleased",
    "OrderCancelled",
    "NotificationSent",
]
OUT_OF_STOCK = [
    "OrderCreated",
    "PaymentProcessed",
    "InventoryRejected",
    "PaymentRefunded",
    "OrderCancelled",
    "NotificationSent",
]
BOTH_FAIL = [
    "OrderCreated",
    "PaymentFailed",
    "InventoryRejected",
    "OrderCancelled",
    "NotificationSent",
]


@pytest.mark.parametrize(
    ("journey", "final"),
    [
        (SHIPPED_JOURNEY, "SHIPPED"),
        (DECLINED, "CANCELLED"),
        (OUT_OF_STOCK, "CANCELLED"),
        (BOTH_FAIL, "CANCELLED"),
    ],
)
def test_every_arrival_order_folds_to_the_same_status(journey, final):
    outcomes = {status_fold(order) for order in permutations(journey)}

    assert outcomes == {final}


@pytest.mark.parametrize("journey", [SHIPPED_JOURNEY, DECLINED, OUT_OF_STOCK, BOTH_FAIL])
def test_repeats_do_not_change_the_status(journey):
    assert status_fold(journey * 3) == status_fold(journey)


def test_an_order_with_only_its_creation_is_initiated():
    assert status_fold(["OrderCreated"]) == "INITIATED"


def test_payment_and_stock_make_an_order_confirmed_before_it_ships():
    assert status_fold(["OrderCreated", "InventoryUpdated", "PaymentProcessed"]) == "CONFIRMED"


def test_a_failure_alone_leaves_the_order_initiated_until_compensation_is_done():
    assert status_fold(["OrderCreated", "PaymentFailed"]) == "INITIATED"
    assert not cancellation_due(["OrderCreated", "PaymentFailed"])
    assert cancellation_due(["OrderCreated", "PaymentFailed", "InventoryReleased"])


def test_a_refund_settles_the_payment_side_of_an_out_of_stock_order():
    seen = ["OrderCreated", "PaymentProcessed", "InventoryRejected"]
    assert not cancellation_due(seen)
    assert cancellation_due([*seen, "PaymentRefunded"])


def test_cancellation_is_due_once_only():
    assert not cancellation_due(BOTH_FAIL)


def test_confirmation_needs_both_halves_and_no_failure():
    assert not confirmation_due(["PaymentProcessed"])
    assert confirmation_due(["PaymentProcessed", "InventoryUpdated"])
    assert not confirmation_due(["PaymentProcessed", "InventoryUpdated", "OrderConfirmed"])
