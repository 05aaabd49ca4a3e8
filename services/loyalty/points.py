"""Where points are decided: how many an order earns, and crediting them once per order."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from django.db.models import F
from django.utils import timezone

from services.bus.hooks import effect_policy
from services.loyalty.models import PointsAward, PointsBalance


def points_for(amount: Decimal) -> int:
    """One point per whole currency unit of the order's amount."""
    return int(amount.to_integral_value(rounding=ROUND_FLOOR))


def points_award(*, order_id: int, customer_id: int, amount: Decimal) -> tuple[PointsAward, bool]:
    """Credit the order's points once. Returns the award and whether this call made it.

    "Once" is kept as payment keeps its charge: the look for an earlier award here, and the
    database's one-award-per-order constraint; the idempotency lever may drop either.
    """
    guards = effect_policy()
    if guards.effect_checked:
        existing = PointsAward.objects.filter(order_id=order_id).first()
        if existing is not None:
            return existing, False
    award = PointsAward.objects.create(
        customer_id=customer_id,
        order_id=order_id,
        points=points_for(amount),
        guarded=guards.effect_unique,
    )
    # One UPDATE that adds to the row: it holds the row until commit (PostgreSQL), so an award
    # to the same customer handled at once waits and then adds to this one's total.
    PointsBalance.objects.bulk_create(
        [PointsBalance(customer_id=customer_id)], ignore_conflicts=True
    )
    PointsBalance.objects.filter(customer_id=customer_id).update(
        points=F("points") + award.points, updated_at=timezone.now()
    )
    return award, True


def points_total(customer_id: int) -> int:
    balance = PointsBalance.objects.filter(customer_id=customer_id).first()
    return balance.points if balance else 0
