"""The order service reacting to events: it confirms or cancels, and keeps its projections.

Subscriptions are declared in ``HANDLES``; the app config enters them in the bus's registry.
"""

from __future__ import annotations

from django.db.models import QuerySet

from orders.aggregator import (
    cancellation_due,
    cancellation_reason,
    confirmation_due,
    status_fold,
)
from orders.models import Customer, Order, OrderInbox, Product
from services.bus import schemas
from services.bus.models import Event
from services.bus.outbox import event_emit
from services.bus.rows import Update, rows_select, rows_update
from services.bus.schemas import Envelope, Payload


def order_react(event: Envelope, payload: Payload) -> None:
    status_now = order_locked(event.orderId)
    log = dict(rows_select(_order_log, event.orderId))
    if confirmation_due(log):
        emitted = event_emit(
            order_id=event.orderId,
            payload=schemas.OrderConfirmed(
                paymentEvent=log["PaymentProcessed"],
                inventoryEvent=log["InventoryUpdated"],
            ),
            causation_id=event.eventId,
        )
        log[emitted.type] = emitted.event_id
    elif cancellation_due(log):
        emitted = event_emit(
            order_id=event.orderId,
            payload=schemas.OrderCancelled(reason=cancellation_reason(log)),
            causation_id=event.eventId,
        )
        log[emitted.type] = emitted.event_id
    status = status_fold(log)
    if status_now != status:
        rows_update(_status_set, status, event.orderId)
    if isinstance(payload, schemas.InventoryUpdated | schemas.InventoryReleased):
        stock_project(payload.productId, payload.stockAfter, event.seq)


def order_locked(order_id: int) -> str:
    """The order's status, its row locked until commit: the two halves of a join (payment and
    stock arriving together) are handled one after the other, so exactly one of them sees both.

    FOR NO KEY UPDATE, not FOR UPDATE: every event stored for the order checks its foreign key
    with FOR KEY SHARE, which FOR UPDATE would block. Another service's transaction holding the
    event log's lock (services/bus/outbox.py) would then wait for this one while this one waits
    for the log's lock to emit OrderConfirmed: a deadlock, seen on PostgreSQL under load.
    """
    found = rows_select(_order_status_locked, order_id)
    if not found:
        raise Order.DoesNotExist(f"no order {order_id}")
    return found[0][0]


def _order_status_locked(order_id: int) -> QuerySet[Order]:
    return Order.objects.select_for_update(no_key=True).filter(pk=order_id).values_list("status")


def _order_log(order_id: int) -> QuerySet[Event]:
    """The order's events, as (type, event id): what the aggregator folds."""
    return Event.objects.filter(order_id=order_id).values_list("type", "event_id")


def points_project(event: Envelope, payload: Payload) -> None:
    """The customer's points as the newest PointsAwarded says: a late, older one changes nothing."""
    assert isinstance(payload, schemas.PointsAwarded)
    Customer.objects.filter(pk=payload.customerId, points_seq__lt=event.seq).update(
        points=payload.totalPoints, points_seq=event.seq
    )


def stock_project(product_id: int | None, stock: int, seq: int) -> None:
    if product_id is None:
        return
    rows_update(_stock_set, stock, seq, product_id, seq)


def _status_set(status: str, order_id: int) -> Update:
    return Order.objects.filter(pk=order_id), {"status": status}


def _stock_set(stock: int, seq: int, product_id: int, older_than: int) -> Update:
    """The shop's stock figure as of ``seq``, unless a later event set it already. (The
    parameters in the statement's order: the values set, then the filter's by name.)"""
    return Product.objects.filter(pk=product_id, stock_seq__lt=older_than), {
        "stock": stock,
        "stock_seq": seq,
    }


HANDLES = {
    **{
        name: order_react
        for name in (
            "PaymentProcessed",
            "PaymentFailed",
            "InventoryUpdated",
            "InventoryRejected",
            "InventoryReleased",
            "PaymentRefunded",
            "OrderShipped",
        )
    },
    # Not a step of the order: the shop's read model of each customer's points.
    "PointsAwarded": points_project,
}
INBOX = OrderInbox
