"""Placing an order the event-driven way: one transaction, then the events take over."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction

from orders.contract import OrderRequest
from orders.models import Customer, Order, Product
from services.bus import hooks, schemas
from services.bus.outbox import event_emit
from services.bus.rows import row_insert
from services.bus.schemas import mask_token


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different order."""


def order_place(
    *,
    request: OrderRequest,
    idempotency_key: str | None = None,
    on_created: Callable[[Order], None] | None = None,
) -> tuple[Order, bool]:
    """Store the order (INITIATED) and its OrderCreated event together.

    ``on_created`` runs in the same transaction once the order has its id, before its event is
    emitted: what a caller stores with it (the console's re-run, its levers for this order) is
    committed with the order, before any service can see it.

    Returns the order and whether it was created now (False: the key's earlier order).
    """
    fingerprint = request.fingerprint()
    if idempotency_key:
        earlier = _order_for_key(idempotency_key, fingerprint)
        if earlier is not None:
            return earlier, False
    customer = request.customer or Customer.objects.get(pk=request.userId)
    product = request.product or Product.objects.get(pk=request.productId)
    try:
        with transaction.atomic():
            order = row_insert(
                Order(
                    customer=customer,
                    product=product,
                    quantity=request.quantity,
                    amount=product.price * request.quantity,
                    payment_token_masked=mask_token(request.paymentToken),
                    idempotency_key=idempotency_key or None,
                    request_fingerprint=fingerprint,
                )
            )
            if on_created is not None:
                on_created(order)
            else:
                # An order's own levers are stored with it, by on_created: this one has none,
                # and the bus need not look for them (registered before the event's flush).
                transaction.on_commit(lambda: hooks.order_unscoped(order.pk))
            payload = order_created_payload(order, request, scoped=on_created is not None)
            event_emit(order_id=order.pk, payload=payload)
    except IntegrityError:
        # Two requests with one key raced; the other one won and its order is the answer.
        if idempotency_key:
            earlier = _order_for_key(idempotency_key, fingerprint)
            if earlier is not None:
                return earlier, False
        raise
    return order, True


def order_created_payload(
    order: Order, request: OrderRequest, *, scoped: bool = True
) -> schemas.Payload:
    """The order's OrderCreated, in the version the bus says producers emit now (the schema
    lever): the producer switches live, and every consumer upcasts what it gets. ``scoped``
    False: the order has no levers of its own to ask about."""
    amount = f"{order.amount:.2f}"
    own = order.pk if scoped else None
    if hooks.schema_version_for("OrderCreated", order_id=own) == 1:
        return schemas.OrderCreatedV1(
            userId=order.customer_id,
            productId=order.product_id,
            quantity=order.quantity,
            amount=amount,
            paymentToken=request.paymentToken,
            customerEmail=order.customer.email,
        )
    return schemas.OrderCreated(
        customerId=order.customer_id,
        productId=order.product_id,
        quantity=order.quantity,
        amount=schemas.Amount(value=amount, currency=schemas.CURRENCY),
        paymentToken=request.paymentToken,
        customerEmail=order.customer.email,
    )


def _order_for_key(key: str, fingerprint: str) -> Order | None:
    order = Order.objects.filter(idempotency_key=key).first()
    if order is not None and order.request_fingerprint != fingerprint:
        raise IdempotencyConflict(key)
    return order
