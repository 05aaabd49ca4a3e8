"""The pages a person watches: the shop, one order's journey, and the two checkouts side by side.

Each page is rendered with what is already stored, then its script (static/js/) opens a socket
and follows the events live. The JSON and form API of the order service stays in views.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from orders.aggregator import FAILURES
from orders.contract import ID_MAX
from orders.live import event_messages
from orders.models import TERMINAL_STATUSES, Customer, Order, Product
from orders.templatetags.service_lanes import lanes_for
from services.bus.models import Event
from services.bus.schemas import DECLINED_TOKEN, event_types

# Offered in the Buy Now form; any well-formed tok_... works the same as the first two.
TEST_TOKENS = [
    ("tok_abc123", "approves (the article's token)"),
    ("tok_visa4242", "approves"),
    (DECLINED_TOKEN, "is declined: watch the compensation"),
]
# Events that undo an earlier step; drawn apart from the failures that caused them.
COMPENSATIONS = frozenset({"InventoryReleased", "PaymentRefunded", "OrderCancelled"})
FEED_BACKLOG = 25
RECENT_ORDERS = 12


@require_http_methods(["GET", "HEAD"])
def shop(request: HttpRequest) -> HttpResponse:
    return render(request, "orders/shop.html", _shop_context())


def shop_with_errors(
    request: HttpRequest, *, errors: Mapping[str, str], form: Mapping[str, Any]
) -> HttpResponse:
    """The shop again, with the Buy Now form as it was sent and what was wrong with it."""
    context = _shop_context()
    context.update(errors=errors, form=form)
    return render(request, "orders/shop.html", context, status=422)


def order_page(request: HttpRequest, order_id: int) -> HttpResponse:
    if order_id > ID_MAX:
        raise Http404("no such order")
    order = get_object_or_404(Order.objects.select_related("customer", "product"), pk=order_id)
    messages = event_messages(order.events.all())
    # The status after the last stored event: the same fold the live messages carry.
    status = messages[-1]["status"] if messages else order.status
    return render(
        request,
        "orders/order.html",
        {
            "order": order,
            "status": status,
            "messages": messages,
            "schemas": schema_guide(),
            "terminal": status in TERMINAL_STATUSES,
            "order_lanes": lanes_for(m["event"]["producer"] for m in messages),
        },
    )


@require_http_methods(["GET", "HEAD"])
def compare(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "orders/compare.html",
        {
            "products": Product.objects.order_by("pk"),
            "customers": Customer.objects.order_by("pk"),
            "tokens": TEST_TOKENS,
            "max_quantity": settings.ORDER_MAX_QUANTITY,
            "schemas": schema_guide(),
        },
    )


def _shop_context() -> dict[str, Any]:
    products = list(Product.objects.order_by("pk"))
    customers = list(Customer.objects.order_by("pk"))
    orders = list(Order.objects.select_related("product", "customer")[:RECENT_ORDERS])
    newest = Event.objects.order_by("-seq").values_list("seq", flat=True)
    oldest_shown = newest[FEED_BACKLOG - 1 : FEED_BACKLOG].first()
    return {
        "products": products,
        "customers": customers,
        "orders": orders,
        "tokens": TEST_TOKENS,
        "declined_token": DECLINED_TOKEN,
        "max_quantity": settings.ORDER_MAX_QUANTITY,
        # The feed replays the last few events (?after=...), then goes live.
        "feed_after": (oldest_shown - 1) if oldest_shown else 0,
        # One key per rendered form: a double click or a retried request is one order.
        "idempotency_key": uuid.uuid4().hex,
        "catalog": {
            "products": {str(p.pk): {"name": p.name, "price": f"{p.price:.2f}"} for p in products},
            "customers": {str(c.pk): c.name for c in customers},
            # The loyalty service's balance per customer, as its PointsAwarded events said.
            "points": {str(c.pk): {"points": c.points, "seq": c.points_seq} for c in customers},
        },
        "schemas": schema_guide(),
    }


def schema_guide() -> dict[str, dict[str, Any]]:
    """What the pages say about each event type: its schema, who emits it, what kind it is."""
    return {
        name: {
            "schema": f"{name} v{cls.version}",
            "version": cls.version,
            "producer": cls.producer,
            "description": cls.description,
            "fields": list(cls.model_fields),
            "kind": (
                "failure"
                if name in FAILURES
                else "compensation"
                if name in COMPENSATIONS
                else "success"
            ),
        }
        for name, cls in event_types().items()
    }
