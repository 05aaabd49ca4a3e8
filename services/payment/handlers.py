"""The payment service's subscriptions: events in, its own events out."""

from __future__ import annotations

from decimal import Decimal

from services.bus import schemas
from services.bus.outbox import event_emit
from services.bus.schemas import Envelope, Payload
from services.payment.models import Payment, PaymentInbox
from services.payment.payments import payment_charge, payment_refund


def on_order_created(event: Envelope, payload: Payload) -> None:
    assert isinstance(payload, schemas.OrderCreated)
    payment, decided = payment_charge(
        order_id=event.orderId,
        amount=Decimal(payload.amount.value),
        token=payload.paymentToken,
    )
    if not decided:
        return
    if payment.status == Payment.Status.CHARGED:
        result: Payload = schemas.PaymentProcessed(
            paymentId=payment.pk,
            amount=f"{payment.amount:.2f}",
            tokenLast4=payment.token_last4,
        )
    else:
        result = schemas.PaymentFailed(reason=payment.reason)
    event_emit(order_id=event.orderId, payload=result, causation_id=event.eventId)


def on_inventory_rejected(event: Envelope, payload: Payload) -> None:
    payment, changed = payment_refund(order_id=event.orderId)
    if changed:
        event_emit(
            order_id=event.orderId,
            payload=schemas.PaymentRefunded(
                amount=f"{payment.amount:.2f}", reason="the order could not be filled"
            ),
            causation_id=event.eventId,
        )


HANDLES = {"OrderCreated": on_order_created, "InventoryRejected": on_inventory_rejected}
INBOX = PaymentInbox
