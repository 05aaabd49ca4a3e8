"""Where a payment is decided: the test-mode gateway, the charge and the refund."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from services.bus.faults import fault_forced
from services.bus.models import Fault
from services.bus.schemas import TOKEN_PATTERN
from services.payment.models import Payment

DECLINED_TOKEN = "tok_declined"


def payment_decide(token: str) -> tuple[bool, str]:
    """Test mode, per the contract: any well-formed ``tok_...`` succeeds but ``tok_declined``."""
    if not TOKEN_PATTERN.match(token):
        return False, "malformed payment token"
    if token == DECLINED_TOKEN:
        return False, "card declined"
    return True, ""


def payment_charge(*, order_id: int, amount: Decimal, token: str) -> tuple[Payment, bool]:
    """Charge the order once. Returns the payment and whether this call decided it."""
    existing = Payment.objects.filter(order_id=order_id).first()
    if existing is not None:
        return existing, False
    ok, reason = payment_decide(token)
    if ok and (
        forced := fault_forced(service="payment", kind=Fault.Kind.DECLINE, order_id=order_id)
    ):
        ok, reason = False, f"card declined by injected {forced.label}"[:200]
    payment = Payment.objects.create(
        order_id=order_id,
        amount=amount,
        token_last4=token[-4:],
        status=Payment.Status.CHARGED if ok else Payment.Status.DECLINED,
        reason=reason,
    )
    return payment, True


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
