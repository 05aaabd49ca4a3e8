"""The loyalty service's tables. Nothing else reads or writes them."""

from __future__ import annotations

from django.db import models

from services.bus.models import Inbox


class PointsAward(models.Model):
    """Points credited to a customer for one shipped order."""

    customer_id = models.BigIntegerField()
    order_id = models.BigIntegerField()
    points = models.PositiveIntegerField()
    awarded_at = models.DateTimeField(auto_now_add=True)
    # Whether this row counts toward the one-per-order constraint: always, unless the operator
    # switched idempotency off at loyalty (services.bus.hooks.Policy.effect_unique).
    guarded = models.BooleanField(default=True)

    class Meta:
        ordering = ["-id"]
        # One guarded award per order, enforced by the database: an order earns its points once,
        # however often (or however late, from a replay) its OrderShipped comes.
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"],
                condition=models.Q(guarded=True),
                name="one_award_per_order",
            )
        ]
        indexes = [
            models.Index(fields=["order_id"], name="award_order"),
            models.Index(fields=["customer_id"], name="award_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.points} points to customer {self.customer_id} for order {self.order_id}"


class PointsBalance(models.Model):
    """A customer's points: the sum of their awards, kept in one row so that two awards to one
    customer handled at once queue on it, and each reads the total its own award made."""

    customer_id = models.BigIntegerField(primary_key=True)
    points = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.points} points for customer {self.customer_id}"


class LoyaltyInbox(Inbox):
    """Events the loyalty service has handled."""
