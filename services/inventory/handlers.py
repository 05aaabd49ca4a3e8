"""The inventory service's subscriptions: events in, its own events out."""

from __future__ import annotations

from services.bus import schemas
from services.bus.outbox import event_emit
from services.bus.schemas import Envelope, Payload
from services.inventory.models import InventoryInbox, Reservation
from services.inventory.stock import stock_level, stock_release, stock_reserve


def on_order_created(event: Envelope, payload: Payload) -> None:
    assert isinstance(payload, schemas.OrderCreated)
    reservation, decided = stock_reserve(
        order_id=event.orderId, product_id=payload.productId, quantity=payload.quantity
    )
    if not decided:
        return
    level = stock_level(payload.productId)
    if reservation.state == Reservation.State.RESERVED:
        result: Payload = schemas.InventoryUpdated(
            productId=payload.productId, quantity=payload.quantity, stockAfter=level
        )
    else:
        result = schemas.InventoryRejected(
            productId=payload.productId, quantity=payload.quantity, available=level
        )
    event_emit(order_id=event.orderId, payload=result, causation_id=event.eventId)


def on_payment_failed(event: Envelope, payload: Payload) -> None:
    reservation, changed = stock_release(order_id=event.orderId)
    if changed:
        event_emit(
            order_id=event.orderId,
            payload=schemas.InventoryReleased(
                productId=reservation.product_id,
                quantity=reservation.quantity,
                stockAfter=stock_level(reservation.product_id),
            ),
            causation_id=event.eventId,
        )


HANDLES = {"OrderCreated": on_order_created, "PaymentFailed": on_payment_failed}
INBOX = InventoryInbox
