"""The article's request-response checkout, for comparison: one request waits for every hop.

This is the one deliberate exception to "services talk only through events": the order service
calls payment, inventory and notification directly, one after the other, and the customer sees
nothing until the last one answers. Each hop is timed, and its outcome is written to the event
log for the live pages only (``deliver=False``): no service reacts to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from orders.contract import OrderRequest
from orders.handlers import stock_project
from orders.models import Customer, Order, OrderStatus, Product
from orders.placement import order_created_payload
from services.bus import hooks, schemas
from services.bus.outbox import event_emit
from services.bus.schemas import Payload, mask_token
from services.inventory.models import Reservation
from services.inventory.stock import stock_level, stock_reserve
from services.notification.emails import email_send
from services.notification.models import SentNotification
from services.payment.models import Payment
from services.payment.payments import payment_charge, payment_refund


@dataclass
class Hop:
    service: str
    ms: float
    outcome: str


@dataclass
class SyncResult:
    order: Order
    hops: list[Hop] = field(default_factory=list)
    reason: str = ""


def order_place_sync(*, request: OrderRequest) -> SyncResult:
    customer = Customer.objects.get(pk=request.userId)
    product = Product.objects.get(pk=request.productId)
    with transaction.atomic():
        order = Order.objects.create(
            customer=customer,
            product=product,
            quantity=request.quantity,
            amount=product.price * request.quantity,
            payment_token_masked=mask_token(request.paymentToken),
            mode=Order.Mode.SYNC,
            status=OrderStatus.PENDING_PAYMENT,
        )
        created = event_emit(
            order_id=order.pk,
            payload=order_created_payload(order, request),
            deliver=False,
        )
    result = SyncResult(order=order)
    cause = created.event_id

    with _hop(result, "payment"), transaction.atomic():
        payment, _ = payment_charge(
            order_id=order.pk, amount=Decimal(order.amount), token=request.paymentToken
        )
        charged = payment.status == Payment.Status.CHARGED
        outcome: Payload = (
            schemas.PaymentProcessed(
                paymentId=payment.pk,
                amount=f"{payment.amount:.2f}",
                tokenLast4=payment.token_last4,
            )
            if charged
            else schemas.PaymentFailed(reason=payment.reason)
        )
        cause = _record(order, outcome, cause)
        result.hops[-1].outcome = outcome.type_name()
    if not charged:
        return _cancel(result, cause, "payment declined")

    with _hop(result, "inventory"), transaction.atomic():
        reservation, _ = stock_reserve(
            order_id=order.pk, product_id=order.product_id, quantity=order.quantity
        )
        level = stock_level(order.product_id)
        reserved = reservation.state == Reservation.State.RESERVED
        outcome = (
            schemas.InventoryUpdated(
                productId=order.product_id, quantity=order.quantity, stockAfter=level
            )
            if reserved
            else schemas.InventoryRejected(
                productId=order.product_id, quantity=order.quantity, available=level
            )
        )
        stored = event_emit(order_id=order.pk, payload=outcome, causation_id=cause, deliver=False)
        stock_project(order.product_id, level, stored.seq)
        cause = stored.event_id
        result.hops[-1].outcome = outcome.type_name()
    if not reserved:
        with _hop(result, "payment (refund)"), transaction.atomic():
            payment_refund(order_id=order.pk)
            cause = _record(
                order,
                schemas.PaymentRefunded(amount=f"{order.amount:.2f}", reason="out of stock"),
                cause,
            )
            result.hops[-1].outcome = "PaymentRefunded"
        return _cancel(result, cause, "out of stock")

    with transaction.atomic():
        _record(order, _confirmed(order), cause)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CONFIRMED)
    with _hop(result, "notification"), transaction.atomic():
        sent = email_send(
            order_id=order.pk, kind=SentNotification.Kind.CONFIRMED, to=customer.email
        )
        assert sent is not None
        notified = _record(
            order,
            schemas.NotificationSent(kind="confirmed", to=sent.to, subject=sent.subject),
            cause,
        )
        _record(order, schemas.OrderShipped(trackingRef=f"CL-{order.pk:08d}"), notified)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.SHIPPED)
        result.hops[-1].outcome = "OrderShipped"
    order.refresh_from_db()
    return result


def _confirmed(order: Order) -> schemas.OrderConfirmed:
    log = dict(order.events.values_list("type", "event_id"))
    return schemas.OrderConfirmed(
        paymentEvent=log["PaymentProcessed"], inventoryEvent=log["InventoryUpdated"]
    )


def _cancel(result: SyncResult, cause: object, reason: str) -> SyncResult:
    order = result.order
    with transaction.atomic():
        _record(order, schemas.OrderCancelled(reason=reason), cause)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
    order.refresh_from_db()
    result.reason = reason
    return result


def _record(order: Order, payload: Payload, cause: object) -> object:
    return event_emit(
        order_id=order.pk, payload=payload, causation_id=cause, deliver=False
    ).event_id


class SyncHopFailed(Exception):
    """A service in the chain failed: the customer gets an error, whatever was done stays done."""

    def __init__(self, result: SyncResult, service: str, error: str) -> None:
        super().__init__(f"{service}: {error}")
        self.result = result
        self.service = service
        self.error = error


class _hop:
    """Times one direct call to a service and adds it to the result.

    A slow or failing service injected from the console acts here as it does on the bus: the
    customer waits for the latency, and a failure breaks the whole chain.
    """

    def __init__(self, result: SyncResult, label: str) -> None:
        self.result = result
        self.label = label
        self.service = label.split(" ")[0]

    def __enter__(self) -> None:
        self.started = time.perf_counter()
        self.result.hops.append(Hop(service=self.label, ms=0.0, outcome="failed"))
        try:
            hooks.delivery_run(service=self.service, order_id=self.result.order.pk)
        except hooks.DeliveryFailure as exc:
            self.__exit__()
            raise SyncHopFailed(self.result, self.service, str(exc)) from exc

    def __exit__(self, *exc: object) -> None:
        self.result.hops[-1].ms = round((time.perf_counter() - self.started) * 1000, 2)
