"""The notification service's subscriptions: it joins PaymentProcessed and InventoryUpdated.

The article's notification service waits for both halves: only when the payment is taken and
the stock reserved does it send "Your order is confirmed!" and ship. It also tells the customer
when an order is cancelled.

As in the article, it does not subscribe to OrderCreated: the address an email goes to is read
from the order's OrderCreated in the bus's log when there is an email to send, once per order,
instead of taking a delivery of every order to keep it.
"""

from __future__ import annotations

from services.bus import schemas
from services.bus.history import order_event
from services.bus.outbox import event_emit
from services.bus.rows import row_upsert
from services.bus.schemas import Envelope, Payload
from services.notification.emails import email_send
from services.notification.models import Join, NotificationInbox, SentNotification


def on_order_event(event: Envelope, payload: Payload) -> None:
    join = _join_record(event.orderId, payload)
    if join.payment_ok and join.inventory_ok:
        _notify(join, SentNotification.Kind.CONFIRMED, event, ship=True)
    elif join.cancelled_reason:
        _notify(join, SentNotification.Kind.CANCELLED, event, ship=False)


def _join_record(order_id: int, payload: Payload) -> Join:
    """Note what ``payload`` tells the join, and return the join as it now stands.

    One statement: the row is inserted with what was heard, or, if it is there, that one column
    is updated, and the row comes back as it now stands. On PostgreSQL the update holds the row
    until commit, so a payment and a reservation handled at once are handled one after the
    other, and the second sees the first's flag (services/bus/rows.py builds the statement;
    tests/test_notification.py pins what the join answers).
    """
    if isinstance(payload, schemas.PaymentProcessed):
        column, value = "payment_ok", True
    elif isinstance(payload, schemas.InventoryUpdated):
        column, value = "inventory_ok", True
    elif isinstance(payload, schemas.OrderCancelled):
        column, value = "cancelled_reason", payload.reason
    else:
        raise TypeError(f"the notification join does not take {type(payload).__name__}")
    payment_ok, inventory_ok, cancelled_reason = row_upsert(
        Join(order_id=order_id, **{column: value}),
        unique=["order_id"],
        update=[column, "updated_at"],
        returning=["payment_ok", "inventory_ok", "cancelled_reason"],
    )
    return Join(
        order_id=order_id,
        payment_ok=bool(payment_ok),
        inventory_ok=bool(inventory_ok),
        cancelled_reason=cancelled_reason,
    )


def _notify(join: Join, kind: SentNotification.Kind, event: Envelope, *, ship: bool) -> None:
    sent = email_send(
        order_id=join.order_id, kind=kind, to=_address(join.order_id), reason=join.cancelled_reason
    )
    if sent is None:
        return
    notified = event_emit(
        order_id=join.order_id,
        payload=schemas.NotificationSent(kind=kind.value, to=sent.to, subject=sent.subject),
        causation_id=event.eventId,
    )
    if ship:
        event_emit(
            order_id=join.order_id,
            payload=schemas.OrderShipped(trackingRef=f"CL-{join.order_id:08d}"),
            causation_id=notified.event_id,
        )


def _address(order_id: int) -> str:
    created = order_event(order_id, "OrderCreated")
    assert isinstance(created, schemas.OrderCreated)
    return created.customerEmail


HANDLES = {
    name: on_order_event
    for name in (
        "PaymentProcessed",
        "InventoryUpdated",
        "OrderCancelled",
    )
}
INBOX = NotificationInbox
