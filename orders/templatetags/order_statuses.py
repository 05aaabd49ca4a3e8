"""The order statuses for every page: the scripts read them here, they keep no copy of their own."""

from __future__ import annotations

from django import template

from orders.models import TERMINAL_STATUSES, OrderStatus

register = template.Library()


@register.simple_tag
def order_statuses() -> dict[str, object]:
    """Every status, the one an order starts in, and the ones it ends in."""
    return {
        "all": [status.value for status in OrderStatus],
        "initial": OrderStatus.INITIATED.value,
        "terminal": [status.value for status in OrderStatus if status in TERMINAL_STATUSES],
    }
