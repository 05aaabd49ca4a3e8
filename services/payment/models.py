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

    # One row per order, enforced by the database: whatever is redelivered, one charge at most.
    order_id = models.BigIntegerField(unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    token_last4 = models.CharField(max_length=4, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.status} {self.amount} for order {self.order_id}"


class PaymentInbox(Inbox):
    """Events the payment service has handled."""
