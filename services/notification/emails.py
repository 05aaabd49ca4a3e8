"""The emails the customer gets, sent through Django's email framework."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from services.bus.hooks import effect_policy
from services.notification.models import SentNotification

_TEXT = {
    SentNotification.Kind.CONFIRMED: (
        "Your order is confirmed!",
        "Hello,\n\nYour order #{order_id} is confirmed: the payment went through and the items "
        "are reserved. It is on its way.\n\nThank you for shopping with Checkout Live.",
    ),
    SentNotification.Kind.CANCELLED: (
        "Your order was cancelled",
        "Hello,\n\nWe could not complete your order #{order_id} ({reason}). Nothing was kept: "
        "any charge was refunded and any reserved items were put back.\n\nCheckout Live",
    ),
}


def email_send(
    *, order_id: int, kind: SentNotification.Kind, to: str, reason: str = ""
) -> SentNotification | None:
    """Send the order's email of this kind once. Returns None if it had been sent already.

    The row is written before the message goes out and in the same transaction: if sending
    fails, the row rolls back and the retry sends again. The look for an earlier email and the
    one-per-kind constraint are the bus policy's to drop (the idempotency lever): then a
    repeated delivery sends the email again.
    """
    guards = effect_policy()
    if (
        guards.effect_checked
        and SentNotification.objects.filter(order_id=order_id, kind=kind).exists()
    ):
        return None
    subject, body = _TEXT[kind]
    sent = SentNotification.objects.create(
        order_id=order_id,
        kind=kind,
        to=to,
        subject=subject,
        body=body.format(order_id=order_id, reason=reason),
        guarded=guards.effect_unique,
    )
    send_mail(sent.subject, sent.body, settings.DEFAULT_FROM_EMAIL, [to], fail_silently=False)
    return sent
