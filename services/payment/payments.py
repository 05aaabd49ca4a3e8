"""Where a payment is decided: the gateway, the charge and the refund.

The decision is the gateway's. The service is given one (``payment_gateway_use``) and knows
nothing of who wraps it: the sandbox (test-mode) gateway below is the default, and the
operator's console wraps it to force declines on purpose.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple, Protocol

from django.db.models import QuerySet
from django.utils import timezone

from services.bus.hooks import effect_policy
from services.bus.rows import row_insert, rows_select
from services.bus.schemas import DECLINED_TOKEN, token_is_valid, token_last4
from services.payment.models import Payment


class Decision(NamedTuple):
    ok: bool
    reason: str


class Gateway(Protocol):
    def decide(self, *, order_id: int, token: str) -> Decision: ...


class SandboxGateway:
    """Test mode, per the contract: any well-formed ``tok_...`` succeeds but ``tok_declined``."""

    def decide(self, *, order_id: int, token: str) -> Decision:
        if not token_is_valid(token):
            return Decision(False, "malformed payment token")
        if token == DECLINED_TOKEN:
            return Decision(False, "card declined")
        return Decision(True, "")


_gateway: Gateway = SandboxGateway()


def payment_gateway() -> Gateway:
    return _gateway


def payment_gateway_use(gateway: Gateway) -> None:
    global _gateway
    _gateway = gateway


def payment_charge(*, order_id: int, amount: Decimal, token: str) -> tuple[Payment, bool]:
    """Charge the order once. Returns the payment and whether this call decided it.

    "Once" is kept by two guards: the look for an earlier payment here, and the database's
    one-payment-per-order constraint. The bus's policy for this delivery may drop either
    (the idempotency lever), and then a repeated delivery charges again.
    """
    guards = effect_policy()
    if guards.effect_checked:
        earlier = rows_select(_payment_of, order_id)
        if earlier:
            return Payment.objects.get(pk=earlier[0][0]), False
    ok, reason = _gateway.decide(order_id=order_id, token=token)
    payment = row_insert(
        Payment(
            order_id=order_id,
            amount=amount,
            token_last4=token_last4(token),
            status=Payment.Status.CHARGED if ok else Payment.Status.DECLINED,
            reason=reason,
            guarded=guards.effect_unique,
        )
    )
    return payment, True


def _payment_of(order_id: int) -> QuerySet[Payment]:
    """The order's first payment, by id: the one the guard finds."""
    return Payment.objects.filter(order_id=order_id).order_by("pk").values_list("pk")[:1]


def payment_refund(*, order_id: int) -> tuple[Payment, bool]:
    """Give back the order's charge. Returns the payment and whether this call changed it.

    If no charge was made yet, the order is marked void so a late charge request does nothing.
    """
    payment = Payment.objects.select_for_update().filter(order_id=order_id).first()
    if payment is None:
        payment = Payment.objects.create(
            order_id=order_id,
            amount=Decimal("0.00"),
            status=Payment.Status.VOID,
            reason="refund requested before any charge",
        )
        return payment, True
    if payment.status != Payment.Status.CHARGED:
        return payment, False
    payment.status = Payment.Status.REFUNDED
    payment.refunded_at = timezone.now()
    payment.save(update_fields=["status", "refunded_at"])
    return payment, True
