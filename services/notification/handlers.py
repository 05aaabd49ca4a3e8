"""The notification service's subscriptions: it joins PaymentProcessed and InventoryUpdated.

The article's notification service waits for both halves: only when the payment is taken and
the stock reserved does it send "Your order is confirmed!" and ship. It also tells the customer
when an order is cancelled.

As in the article, it does not subscribe to OrderCreated: the address an email goes to is read
from the order's OrderCreated in the bus's log when there is an email to send, once per order,
instead of taking a delivery of every order to keep it.
"""

from __future__ import annotations

from django.utils import timezone

from services.bus import schemas
from services.bus.history import order_event
from services.bus.outbox import event_emit
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

    The row is inserted if missing, then changed by one UPDATE, which on PostgreSQL holds the
    row until commit: a payment and a reservation handled at once both see the other's flag.
    """
    if isinstance(payload, schemas.PaymentProcessed):
        heard = {"payment_ok": True}
    elif isinstance(payload, schemas.InventoryUpdated):
        heard = {"inventory_ok": True}
    elif isinstance(payload, schemas.OrderCancelled):
        heard = {"cancelled_reason": payload.reason}
    else:
        raise TypeError(f"the notification join does not take {type(payload).__name__}")
    Join.objects.bulk_create([Join(order_id=order_id)], ignore_conflicts=True)
    Join.objects.filter(order_id=order_id).update(**heard, updated_at=timezone.now())
    return Join.objects.get(order_id=order_id)


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
