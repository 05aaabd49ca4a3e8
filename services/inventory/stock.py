"""Reserving and releasing stock: atomic, never below zero, once per order."""

from __future__ import annotations

from django.db.models import F

from services.bus.faults import fault_forced
from services.bus.models import Fault
from services.inventory.models import Reservation, Stock


def stock_reserve(*, order_id: int, product_id: int, quantity: int) -> tuple[Reservation, bool]:
    """Reserve stock for the order. Returns the reservation and whether this call decided it."""
    existing = Reservation.objects.filter(order_id=order_id).first()
    if existing is not None:
        return existing, False
    # One conditional UPDATE: two orders racing for the last unit cannot both pass the check.
    forced = fault_forced(service="inventory", kind=Fault.Kind.OUT_OF_STOCK, order_id=order_id)
    taken = not forced and Stock.objects.filter(
        product_id=product_id, on_hand__gte=quantity
    ).update(on_hand=F("on_hand") - quantity)
    reservation = Reservation.objects.create(
        order_id=order_id,
        product_id=product_id,
        quantity=quantity,
        state=Reservation.State.RESERVED if taken else Reservation.State.REJECTED,
    )
    return reservation, True


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
    return (
        Stock.objects.filter(product_id=product_id).values_list("on_hand", flat=True).first() or 0
    )
