"""The inventory service's tables. Nothing else reads or writes them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from services.bus.models import Inbox


class Stock(models.Model):
    product_id = models.BigIntegerField(unique=True)
    on_hand = models.IntegerField()
    # What was put on the shelf, so the books can be checked: on_hand + reserved == initial.
    initial = models.IntegerField()

    class Meta:
        ordering = ["product_id"]
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_never_negative")
        ]

    def __str__(self) -> str:
        return f"product {self.product_id}: {self.on_hand}"


class Reservation(models.Model):
    class State(models.TextChoices):
        RESERVED = "RESERVED"
        REJECTED = "REJECTED"
        RELEASED = "RELEASED"
        # A release came before the reservation: the order is void and nothing will be reserved.
        VOID = "VOID"

    order_id = models.BigIntegerField()
    product_id = models.BigIntegerField(null=True, blank=True)
    quantity = models.PositiveIntegerField()
    state = models.CharField(max_length=10, choices=State.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Whether this row counts toward the one-per-order constraint: always, unless the operator
    # switched idempotency off at inventory (services.bus.hooks.Policy.effect_unique).
    guarded = models.BooleanField(default=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"],
                condition=Q(guarded=True),
                name="one_reservation_per_order",
            )
        ]
        indexes = [models.Index(fields=["order_id"], name="reservation_order")]

    def __str__(self) -> str:
        return f"{self.state} {self.quantity} of {self.product_id} for order {self.order_id}"


class InventoryInbox(Inbox):
    """Events the inventory service has handled."""
