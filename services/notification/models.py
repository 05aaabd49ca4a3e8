"""The notification service's tables. Nothing else reads or writes them."""

from __future__ import annotations

from django.db import models

from services.bus.models import Inbox


class Join(models.Model):
    """What the service has heard of one order: it confirms only once payment and stock are in."""

    order_id = models.BigIntegerField(primary_key=True)
    payment_ok = models.BooleanField(default=False)
    inventory_ok = models.BooleanField(default=False)
    cancelled_reason = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"join for order {self.order_id}"


class SentNotification(models.Model):
    class Kind(models.TextChoices):
        CONFIRMED = "confirmed"
        CANCELLED = "cancelled"

    order_id = models.BigIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    to = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    sent_at = models.DateTimeField(auto_now_add=True)
    # Whether this row counts toward the one-per-kind constraint: always, unless the operator
    # switched idempotency off at notification (services.bus.hooks.Policy.effect_unique).
    guarded = models.BooleanField(default=True)

    class Meta:
        ordering = ["-id"]
        # One email of each kind per order, however often the event that triggers it comes.
        constraints = [
            models.UniqueConstraint(
                fields=["order_id", "kind"],
                condition=models.Q(guarded=True),
                name="one_email_per_kind",
            )
        ]
        indexes = [models.Index(fields=["order_id", "kind"], name="email_order_kind")]

    def __str__(self) -> str:
        return f"{self.kind} email for order {self.order_id}"


class NotificationInbox(Inbox):
    """Events the notification service has handled."""
