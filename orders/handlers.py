"""The order service reacting to events: it confirms or cancels, and keeps its projections.

Subscriptions are declared in ``HANDLES``; the app config enters them in the bus's registry.
"""

from __future__ import annotations

from orders.aggregator import (
    cancellation_due,
    cancellation_reason,
    confirmation_due,
    status_fold,
)
from orders.models import Customer, Order, OrderInbox, Product
from services.bus import schemas
from services.bus.outbox import event_emit
from services.bus.schemas import Envelope, Payload


def order_react(event: Envelope, payload: Payload) -> None:
    order = order_locked(event.orderId)
    log = dict(order.events.values_list("type", "event_id"))
    if confirmation_due(log):
        emitted = event_emit(
            order_id=order.pk,
            payload=schemas.OrderConfirmed(
                paymentEvent=log["PaymentProcessed"],
                inventoryEvent=log["InventoryUpdated"],
            ),
            causation_id=event.eventId,
        )
        log[emitted.type] = emitted.event_id
    elif cancellation_due(log):
        emitted = event_emit(
            order_id=order.pk,
            payload=schemas.OrderCancelled(reason=cancellation_reason(log)),
            causation_id=event.eventId,
        )
        log[emitted.type] = emitted.event_id
    status = status_fold(log)
    if order.status != status:
        Order.objects.filter(pk=order.pk).update(status=status)
    if isinstance(payload, schemas.InventoryUpdated | schemas.InventoryReleased):
        stock_project(payload.productId, payload.stockAfter, event.seq)


def order_locked(order_id: int) -> Order:
    """The order, locked until commit: the two halves of a join (payment and stock arriving
    together) are handled one after the other, so exactly one of them sees both.

    FOR NO KEY UPDATE, not FOR UPDATE: every event stored for the order checks its foreign key
    with FOR KEY SHARE, which FOR UPDATE would block. Another service's transaction holding the
    event log's lock (services/bus/outbox.py) would then wait for this one while this one waits
    for the log's lock to emit OrderConfirmed: a deadlock, seen on PostgreSQL under load.
    """
    return Order.objects.select_for_update(no_key=True).get(pk=order_id)


def points_project(event: Envelope, payload: Payload) -> None:
    """The customer's points as the newest PointsAwarded says: a late, older one changes nothing."""
    assert isinstance(payload, schemas.PointsAwarded)
    Customer.objects.filter(pk=payload.customerId, points_seq__lt=event.seq).update(
        points=payload.totalPoints, points_seq=event.seq
    )


def stock_project(product_id: int | None, stock: int, seq: int) -> None:
    if product_id is None:
        return
    Product.objects.filter(pk=product_id, stock_seq__lt=seq).update(stock=stock, stock_seq=seq)


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
