"""The payment service's tables. Nothing else reads or writes them."""

from __future__ import annotations

from django.db import models

from services.bus.models import Inbox


class Payment(models.Model):
    class Status(models.TextChoices):
        CHARGED = "CHARGED"
        DECLINED = "DECLINED"
        REFUNDED = "REFUNDED"
        # A refund request came before the charge: the order is void and is never charged.
        VOID = "VOID"

    order_id = models.BigIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    token_last4 = models.CharField(max_length=4, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # Whether this row counts toward the one-per-order constraint: always, unless the operator
    # switched idempotency off at payment (services.bus.hooks.Policy.effect_unique).
    guarded = models.BooleanField(default=True)

    class Meta:
        ordering = ["-id"]
        # One guarded row per order, enforced by the database: one charge at most, whatever is
        # redelivered.
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"],
                condition=models.Q(guarded=True),
                name="one_payment_per_order",
            )
        ]
        indexes = [models.Index(fields=["order_id"], name="payment_order")]

    def __str__(self) -> str:
        return f"{self.status} {self.amount} for order {self.order_id}"


class PaymentInbox(Inbox):
    """Events the payment service has handled."""
