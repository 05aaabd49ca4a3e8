"""Where stock is reserved and released: atomic, never below zero, once per order.

Whether an order may take stock at all is the rule's (``reserve_rule_use``): by default every
order may, and the operator's console wraps it to force "out of stock" on purpose.
"""

from __future__ import annotations

from typing import Protocol

from django.db.models import F, QuerySet

from services.bus.hooks import effect_policy
from services.bus.rows import Update, row_insert, rows_select, rows_update
from services.inventory.models import Reservation, Stock


class ReserveRule(Protocol):
    def allows(self, *, order_id: int) -> bool: ...


class OpenShelf:
    """Every order may take what is on hand."""

    def allows(self, *, order_id: int) -> bool:
        return True


_rule: ReserveRule = OpenShelf()


def reserve_rule() -> ReserveRule:
    return _rule


def reserve_rule_use(rule: ReserveRule) -> None:
    global _rule
    _rule = rule


def stock_reserve(*, order_id: int, product_id: int, quantity: int) -> tuple[Reservation, bool]:
    """Reserve stock for the order. Returns the reservation and whether this call decided it.

    Once per order, by the look for an earlier reservation and the database's constraint; the
    bus's policy for this delivery may drop either (the idempotency lever), and then a repeated
    delivery takes the stock again.
    """
    guards = effect_policy()
    if guards.effect_checked:
        earlier = rows_select(_reservation_of, order_id)
        if earlier:
            return Reservation.objects.get(pk=earlier[0][0]), False
    # One conditional UPDATE: two orders racing for the last unit cannot both pass the check.
    taken = _rule.allows(order_id=order_id) and rows_update(
        _stock_take, quantity, quantity, product_id
    )
    reservation = row_insert(
        Reservation(
            order_id=order_id,
            product_id=product_id,
            quantity=quantity,
            state=Reservation.State.RESERVED if taken else Reservation.State.REJECTED,
            guarded=guards.effect_unique,
        )
    )
    return reservation, True


def _stock_take(quantity: int, at_least: int, product_id: int) -> Update:
    """Take ``quantity`` units if at least that many are on hand: 1 row changed, or 0. (The
    parameters in the statement's order: Django sorts the filter's conditions by name.)"""
    return Stock.objects.filter(product_id=product_id, on_hand__gte=at_least), {
        "on_hand": F("on_hand") - quantity
    }


def _reservation_of(order_id: int) -> QuerySet[Reservation]:
    """The order's first reservation, by id: the one the guard finds."""
    return Reservation.objects.filter(order_id=order_id).order_by("pk").values_list("pk")[:1]


def stock_release(*, order_id: int) -> tuple[Reservation, bool]:
    """Give back what the order reserved. Returns it and whether this call changed it."""
    reservation = Reservation.objects.select_for_update().filter(order_id=order_id).first()
    if reservation is None:
        reservation = Reservation.objects.create(
            order_id=order_id, product_id=None, quantity=0, state=Reservation.State.VOID
        )
        return reservation, True
    if reservation.state != Reservation.State.RESERVED:
        return reservation, False
    Stock.objects.filter(product_id=reservation.product_id).update(
        on_hand=F("on_hand") + reservation.quantity
    )
    reservation.state = Reservation.State.RELEASED
    reservation.save(update_fields=["state", "updated_at"])
    return reservation, True


def stock_level(product_id: int | None) -> int:
    if product_id is None:
        return 0
    found = rows_select(_on_hand, product_id)
    return found[0][0] if found else 0


def _on_hand(product_id: int) -> QuerySet[Stock]:
    return Stock.objects.filter(product_id=product_id).order_by("pk").values_list("on_hand")[:1]


def stock_seed(*, product_id: int, on_hand: int) -> bool:
    """Put a product on the shelf with ``on_hand`` units, once: a product already stocked keeps
    what it has, so loading the demo again never resets a running shop."""
    _, created = Stock.objects.get_or_create(
        product_id=product_id, defaults={"on_hand": on_hand, "initial": on_hand}
    )
    return created
