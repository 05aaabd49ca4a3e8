"""The order service's tables: the catalog it sells from, its orders and its inbox.

The events of an order are in the bus's log (``services.bus.models.Event``), by ``order_id``.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q, QuerySet

from services.bus.models import Event, Inbox


class OrderStatus(models.TextChoices):
    INITIATED = "INITIATED"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"
    # Only the request-response checkout uses this: created, payment not yet taken.
    PENDING_PAYMENT = "PENDING_PAYMENT"


TERMINAL_STATUSES = frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED})


class Customer(models.Model):
    name = models.CharField(max_length=120)
    email = models.EmailField()
    # The loyalty service's balance for this customer, as its PointsAwarded events say: the
    # order service never reads loyalty's tables. ``points_seq`` is the event it comes from.
    points = models.PositiveIntegerField(default=0)
    points_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


# The smallest price a product may have: an order's amount is the price times the quantity, and
# the events carry it as a positive sum of money.
PRICE_MIN = Decimal("0.01")


class Product(models.Model):
    name = models.CharField(max_length=120)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(PRICE_MIN)]
    )
    description = models.CharField(max_length=240, blank=True)
    # A read model of the inventory service's stock, kept up to date from its events. The order
    # service never reads inventory's tables; ``stock_seq`` is the event the figure comes from,
    # so a late or repeated event cannot move it backwards.
    stock = models.IntegerField(default=0)
    stock_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=PRICE_MIN), name="product_price_positive")
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Order(models.Model):
    class Mode(models.TextChoices):
        EVENTS = "events", "event-driven"
        SYNC = "sync", "request-response"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    payment_token_masked = models.CharField(max_length=40)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.EVENTS)
    # For event-driven orders a projection of the event log (orders/aggregator.py); for the
    # request-response checkout, written directly as each hop answers.
    status = models.CharField(
        max_length=16,
        choices=OrderStatus.choices,
        default=OrderStatus.INITIATED,
        db_index=True,
    )
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-id"])]

    def __str__(self) -> str:
        return f"Order #{self.pk}"

    @property
    def events(self) -> QuerySet[Event]:
        """The order's events in the bus's log, in ``seq`` order."""
        return Event.objects.filter(order_id=self.pk)


class OrderInbox(Inbox):
    """Events the order service has handled."""
