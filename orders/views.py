"""HTTP adapters of the order service: parse, call, answer. The HTML pages are in pages.py.

The bodies they read and write are the models of orders/contract.py; every refusal is an
``ApiError`` answered by ``error_response``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from orders.contract import (
    ID_MAX,
    IDEMPOTENCY_KEY_MAX,
    ApiError,
    Hop,
    OrderAccepted,
    OrderDetail,
    OrderPlacedSync,
    OrderRequest,
    ProductItem,
    Products,
    SyncFailed,
    body_read,
    body_too_large,
    error_response,
    json_body,
    order_request_parse,
)
from orders.live import event_messages
from orders.models import Order, Product
from orders.openapi import openapi_schema
from orders.pages import order_page, shop_with_errors
from orders.placement import IdempotencyConflict, order_place
from orders.ratelimit import order_rate_limited
from orders.sync_checkout import SyncHopFailed, SyncResult, order_place_sync


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
    """Parse the JSON or form body into the contract's model; raises ``ApiError``."""
    body_read(request)
    if _is_form(request):
        return order_request_parse(request.POST, from_form=True)
    return order_request_parse(json_body(request))


def _csrf_rejection(request: HttpRequest) -> HttpResponse | None:
    """Forms must carry the CSRF token; JSON clients are not browsers posting forms."""
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {})


def _gate(request: HttpRequest) -> HttpResponse | None:
    """What both checkouts check before reading the order: the body's size, the CSRF token of a
    form, and the client's rate. Returns the refusal, or None to go on."""
    try:
        is_form = _is_form(request)
    except RequestDataTooBig:
        return error_response(body_too_large())
    if is_form and (rejection := _csrf_rejection(request)) is not None:
        return rejection
    if (wait := order_rate_limited(request=request)) is not None:
        return error_response(
            ApiError(
                429,
                "rate_limited",
                f"at most {settings.ORDER_RATE_LIMIT} orders per "
                f"{settings.ORDER_RATE_WINDOW_SECONDS} s from one client; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        )
    return None


def _idempotency_key(request: HttpRequest) -> str | None:
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        raise ApiError(
            422,
            "invalid_idempotency_key",
            f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX} characters",
            field="Idempotency-Key",
        )
    return key


@csrf_exempt
@require_POST
@sensitive_post_parameters("paymentToken")
def orders_create(request: HttpRequest) -> HttpResponse:
    if (refusal := _gate(request)) is not None:
        return refusal
    is_form = _is_form(request)
    try:
        key = _idempotency_key(request)
        order_request = _read_order_request(request)
        order, created = order_place(request=order_request, idempotency_key=key)
    except ApiError as exc:
        if is_form and exc.errors:
            return shop_with_errors(request, errors=exc.errors, form=request.POST)
        return error_response(exc)
    except IdempotencyConflict:
        return error_response(
            ApiError(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different order",
                field="Idempotency-Key",
            )
        )
    location = reverse("order_detail", args=[order.pk])
    if is_form:
        return _see_other(location)
    answer = OrderAccepted(
        orderId=order.pk,
        status="INITIATED" if created else order.status,
        message="Order received. Processing...",
    )
    response = answer.response(status=202)
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
@sensitive_post_parameters("paymentToken")
def orders_create_sync(request: HttpRequest) -> HttpResponse:
    if (refusal := _gate(request)) is not None:
        return refusal
    try:
        order_request = _read_order_request(request)
    except ApiError as exc:
        return error_response(exc)
    try:
        result = order_place_sync(request=order_request)
    except SyncHopFailed as exc:
        exc.result.order.refresh_from_db()
        failed = SyncFailed(
            orderId=exc.result.order.pk,
            status=exc.result.order.status,
            message=f"the {exc.service} service failed ({exc.error}); "
            "the chain stopped there and the customer gets an error",
            hops=_hops(exc.result),
            totalMs=_total_ms(exc.result),
        )
        return failed.response(status=502)
    placed = OrderPlacedSync(
        orderId=result.order.pk,
        status=result.order.status,
        message=(
            "Order placed and shipped."
            if result.order.status == "SHIPPED"
            else f"Order cancelled: {result.reason}."
        ),
        hops=_hops(result),
        totalMs=_total_ms(result),
    )
    response = placed.response(status=201)
    response["Location"] = reverse("order_detail", args=[result.order.pk])
    return response


def _hops(result: SyncResult) -> list[Hop]:
    return [Hop(service=h.service, ms=h.ms, outcome=h.outcome) for h in result.hops]


def _total_ms(result: SyncResult) -> float:
    return round(sum(h.ms for h in result.hops), 2)


@csrf_exempt  # read-only: any other method is answered 405, not 403
@require_GET
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    if not _wants_json(request):
        return order_page(request, order_id)
    order = Order.objects.filter(pk=order_id).first() if order_id <= ID_MAX else None
    if order is None:
        return error_response(ApiError(404, "not_found", f"no order {order_id}"))
    messages = event_messages(order.events.all())
    body = {
        "orderId": order.pk,
        "status": messages[-1]["status"] if messages else order.status,
        "mode": order.mode,
        "events": [m["event"] for m in messages],
    }
    # Held to the contract, then sent as the log's own JSON: the same bytes the sockets carry.
    OrderDetail.model_validate(body)
    return JsonResponse(body)


@csrf_exempt  # read-only: any other method is answered 405, not 403
@require_GET
def products_list(request: HttpRequest) -> JsonResponse:
    products = Products(
        [
            ProductItem(id=p.pk, name=p.name, price=f"{p.price:.2f}", stock=p.stock)
            for p in Product.objects.order_by("pk")
        ]
    )
    return JsonResponse(products.model_dump(mode="json"), safe=False)


@csrf_exempt  # read-only: any other method is answered 405, not 403
@require_GET
def openapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_schema())
