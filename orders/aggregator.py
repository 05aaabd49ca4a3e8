"""The state aggregator: an order's status is a pure fold over the types of its events.

It depends only on which events are there, never on their order or how often each came, so any
arrival order and any number of redeliveries give the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from orders.models import OrderStatus

SUCCESSES = frozenset({"PaymentProcessed", "InventoryUpdated"})
FAILURES = frozenset({"PaymentFailed", "InventoryRejected"})
# What settles each side once something failed: the payment either failed or was refunded, the
# stock either was never reserved or was given back.
PAYMENT_SETTLED = frozenset({"PaymentFailed", "PaymentRefunded"})
INVENTORY_SETTLED = frozenset({"InventoryRejected", "InventoryReleased"})


def status_fold(event_types: Iterable[str]) -> OrderStatus:
    seen = set(event_types)
    if "OrderCancelled" in seen:
        return OrderStatus.CANCELLED
    if "OrderShipped" in seen:
        return OrderStatus.SHIPPED
    if "OrderConfirmed" in seen or (seen >= SUCCESSES and not seen & FAILURES):
        return OrderStatus.CONFIRMED
    return OrderStatus.INITIATED


def confirmation_due(event_types: Iterable[str]) -> bool:
    seen = set(event_types)
    return seen >= SUCCESSES and not seen & FAILURES and "OrderConfirmed" not in seen


def cancellation_due(event_types: Iterable[str]) -> bool:
    seen = set(event_types)
    return (
        bool(seen & FAILURES)
        and bool(seen & PAYMENT_SETTLED)
        and bool(seen & INVENTORY_SETTLED)
        and "OrderCancelled" not in seen
    )


def cancellation_reason(event_types: Iterable[str]) -> str:
    seen = set(event_types)
    reasons = []
    if "PaymentFailed" in seen:
        reasons.append("payment declined")
    if "InventoryRejected" in seen:
        reasons.append("out of stock")
    return " and ".join(reasons) or "cancelled"
