"""HTTP adapters of the order service: parse, call, answer. The HTML pages are in pages.py."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from orders.live import event_messages
from orders.models import Order, Product
from orders.pages import order_page, shop_with_errors
from orders.placement import IdempotencyConflict, order_place
from orders.ratelimit import order_rate_limited
from orders.sync_checkout import SyncHopFailed, SyncResult, order_place_sync
from orders.validation import OrderInputError, OrderRequest, order_request_parse

IDEMPOTENCY_KEY_MAX = 255


class _BadRequest(Exception):
    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        self.status, self.error, self.message, self.field = (
            status,
            error,
            message,
            field,
        )


def _error(status: int, error: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": error, "message": message, **extra}, status=status)


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _is_form(request: HttpRequest) -> bool:
    """A browser form post. A JSON body sent as a form (curl -d without -H) is still JSON."""
    form_type = request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    )
    return form_type and not request.body.lstrip().startswith(b"{")


def _read_order_request(request: HttpRequest) -> OrderRequest:
    """Parse the JSON or form body; raises ``_BadRequest`` or ``OrderInputError``."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.ORDER_BODY_MAX_BYTES:
        raise _BadRequest(413, "body_too_large", _too_large())
    try:
        body = request.body
    except RequestDataTooBig:
        raise _BadRequest(413, "body_too_large", _too_large()) from None
    if _is_form(request):
        return order_request_parse(request.POST, from_form=True)
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRequest(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    return order_request_parse(data)


def _too_large() -> str:
    return f"the body is larger than {settings.ORDER_BODY_MAX_BYTES} bytes"


def _csrf_rejection(request: HttpRequest) -> HttpResponse | None:
    """Forms must carry the CSRF token; JSON clients are not browsers posting forms."""
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})


@csrf_exempt
@require_POST
def orders_create(request: HttpRequest) -> HttpResponse:
    try:
        is_form = _is_form(request)
    except RequestDataTooBig:
        return _error(413, "body_too_large", _too_large())
    if is_form and (rejection := _csrf_rejection(request)) is not None:
        return rejection
    if (wait := order_rate_limited(request=request)) is not None:
        response = _error(
            429,
            "rate_limited",
            f"at most {settings.ORDER_RATE_LIMIT} orders per "
            f"{settings.ORDER_RATE_WINDOW_SECONDS} s from one client; retry in {wait} s",
        )
        response["Retry-After"] = str(wait)
        return response
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        return _error(
            422,
            "invalid_idempotency_key",
            f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX} characters",
            field="Idempotency-Key",
        )
    try:
        order_request = _read_order_request(request)
        order, created = order_place(request=order_request, idempotency_key=key)
    except _BadRequest as exc:
        return _error(exc.status, exc.error, exc.message)
    except OrderInputError as exc:
        if is_form:
            return shop_with_errors(request, errors=exc.errors, form=request.POST)
        return _error(
            422,
            "invalid_field",
            exc.errors[exc.field],
            field=exc.field,
            errors=exc.errors,
        )
    except IdempotencyConflict:
        return _error(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different order",
            field="Idempotency-Key",
        )
    location = reverse("order_detail", args=[order.pk])
    if is_form:
        return _see_other(location)
    response = JsonResponse(
        {
            "orderId": order.pk,
            "status": "INITIATED" if created else order.status,
            "message": "Order received. Processing...",
        },
        status=202,
    )
    response["Location"] = location
    if not created:
        response["Idempotent-Replayed"] = "true"
    return response


def _see_other(location: str) -> HttpResponse:
    response = HttpResponse(status=303)
    response["Location"] = location
    return response


@csrf_exempt
@require_POST
def orders_create_sync(request: HttpRequest) -> HttpResponse:
    try:
        order_request = _read_order_request(request)
    except _BadRequest as exc:
        return _error(exc.status, exc.error, exc.message)
    except OrderInputError as exc:
        return _error(
            422,
            "invalid_field",
            exc.errors[exc.field],
            field=exc.field,
            errors=exc.errors,
        )
    try:
        result = order_place_sync(request=order_request)
    except SyncHopFailed as exc:
        exc.result.order.refresh_from_db()
        return JsonResponse(
            {
                "orderId": exc.result.order.pk,
                "status": exc.result.order.status,
                "error": "service_failed",
                "message": f"the {exc.service} service failed ({exc.error}); "
                "the chain stopped there and the customer gets an error",
                "hops": _hops(exc.result),
                "totalMs": round(sum(h.ms for h in exc.result.hops), 2),
            },
            status=502,
        )
    body = {
        "orderId": result.order.pk,
        "status": result.order.status,
        "message": (
            "Order placed and shipped."
            if result.order.status == "SHIPPED"
            else f"Order cancelled: {result.reason}."
        ),
        "hops": _hops(result),
        "totalMs": round(sum(h.ms for h in result.hops), 2),
    }
    response = JsonResponse(body, status=201)
    response["Location"] = reverse("order_detail", args=[result.order.pk])
    return response


def _hops(result: SyncResult) -> list[dict[str, Any]]:
    return [{"service": h.service, "ms": h.ms, "outcome": h.outcome} for h in result.hops]


@csrf_exempt  # read-only: any other method is answered 405, not 403
@require_GET
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    if not _wants_json(request):
        return order_page(request, order_id)
    order = get_object_or_404(Order, pk=order_id)
    messages = event_messages(order.events.all())
    return JsonResponse(
        {
            "orderId": order.pk,
            "status": messages[-1]["status"] if messages else order.status,
            "mode": order.mode,
            "events": [m["event"] for m in messages],
        }
    )


@csrf_exempt  # read-only: any other method is answered 405, not 403
@require_GET
def products_list(request: HttpRequest) -> JsonResponse:
    products = [
        {"id": p.pk, "name": p.name, "price": f"{p.price:.2f}", "stock": p.stock}
        for p in Product.objects.order_by("pk")
    ]
    return JsonResponse(products, safe=False)


@csrf_exempt  # read-only: any other method is answered 405, not 403
@require_GET
def openapi_json(request: HttpRequest) -> JsonResponse:
    from orders.openapi import openapi_schema

    return JsonResponse(openapi_schema())
