"""Finding orders for the console: filters on indexed columns and keyset paging by id.

Keyset paging (``id < last id seen``) costs the same on page 1 and page 2,000, where OFFSET
would read and throw away every row before the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from orders.models import Customer, Order

PAGE_SIZE = 50
_CUSTOMER_MATCHES_MAX = 500
# An id: ASCII digits ("²" is a digit to ``str.isdigit`` and not to ``int``), within a bigint.
_CUSTOMER_ID = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class OrderFilter:
    status: str = ""
    product_id: int | None = None
    customer: str = ""  # an id, or part of a name or email
    since: datetime | None = None
    until: datetime | None = None
    order_id: int | None = None


@dataclass
class OrderPage:
    orders: list[Order]
    newer: int | None  # pass as ``after`` for the page of newer orders
    older: int | None  # pass as ``before`` for the page of older orders


def _filtered(f: OrderFilter) -> QuerySet[Order]:
    orders = Order.objects.select_related("customer", "product")
    if f.order_id is not None:
        orders = orders.filter(pk=f.order_id)
    if f.status:
        orders = orders.filter(status=f.status)
    if f.product_id is not None:
        orders = orders.filter(product_id=f.product_id)
    if f.customer:
        if _CUSTOMER_ID.fullmatch(f.customer):
            orders = orders.filter(customer_id=int(f.customer))
        else:
            # Customers are few next to orders: find them first, then use the customer index.
            ids = list(
                Customer.objects.filter(
                    Q(name__icontains=f.customer) | Q(email__icontains=f.customer)
                ).values_list("pk", flat=True)[:_CUSTOMER_MATCHES_MAX]
            )
            orders = orders.filter(customer_id__in=ids)
    if f.since is not None:
        orders = orders.filter(created_at__gte=f.since)
    if f.until is not None:
        orders = orders.filter(created_at__lt=f.until)
    return orders


def orders_find(
    f: OrderFilter, *, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> OrderPage:
    """One page of matching orders, newest first, starting below ``before`` or above ``after``."""
    orders = _filtered(f)
    if after is not None:
        rows = list(orders.filter(pk__gt=after).order_by("id")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        has_older = True
    else:
        if before is not None:
            orders = orders.filter(pk__lt=before)
        rows = list(orders.order_by("-id")[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
        has_newer = before is not None
    return OrderPage(
        orders=rows,
        newer=rows[0].pk if rows and has_newer else None,
        older=rows[-1].pk if rows and has_older else None,
    )
