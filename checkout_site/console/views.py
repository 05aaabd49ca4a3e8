"""The operator's console: HTTP adapters over services/bus (control, faults, deliveries, metrics).

Pages and JSON for staff only; ``service_status`` is public, so every page can show a service
that is down. The control endpoints keep to CONTRACT.md: staff session plus CSRF, and anyone
else gets 403 with nothing changed.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from kombu.exceptions import OperationalError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from checkout_site.console.bus_settings import broker_settings
from checkout_site.console.consistency import ledger
from checkout_site.console.control import (
    BrokerUnreachable,
    consumers_by_worker,
    service_start,
    service_stop,
    services_running,
)
from checkout_site.console.faults import VALUED, fault_add, fault_problems, fault_remove
from checkout_site.console.heartbeat import workers_alive
from checkout_site.console.levers import (
    DELIVERY,
    IDEMPOTENCY,
    lever_set,
    lever_validate,
    levers_document,
    levers_reset,
    levers_state,
    levers_unsafe,
    schema_types,
    schema_versions,
)
from checkout_site.console.lifecycle import events_lifecycle
from checkout_site.console.metrics import CheckoutCollector, delivery_counters, latency, throughput
from checkout_site.console.models import Crash, Fault, Rerun
from checkout_site.console.record import record_json, record_recent, record_touching, record_window
from checkout_site.console.rerun import (
    RERUN_FAULTS,
    NotFinished,
    rerun_place,
    rerun_validate,
    reruns_of,
    reruns_recent,
)
from checkout_site.console.search import OrderFilter, orders_find
from orders.contract import (
    ID_MAX,
    ApiError,
    FaultItem,
    FaultRequest,
    LeversDocument,
    QueueDepths,
    ServiceSwitched,
    error_response,
    json_body,
)
from orders.live import event_messages
from orders.models import TERMINAL_STATUSES, Customer, Order, OrderStatus, Product
from orders.pages import schema_guide
from services.bus.broker import queue_depths
from services.bus.models import DeadLetter, Delivery, Event
from services.bus.redrive import dead_letters_redrive
from services.bus.registry import NotSubscribed, subscriber, subscribers, subscriptions
from services.bus.schemas import event_types, json_schemas, mask_payload

View = Callable[..., HttpResponse]

_registry = CollectorRegistry(auto_describe=False)
_registry.register(CheckoutCollector())


# What staff may do. Every staff member reads the console; what changes the running system, and
# the dead letters (whole events, customers' addresses included), take a permission of its
# own, which a superuser has and an admin can grant (Users, or a group such as "operators").
SERVICES_SWITCH = "console.change_servicestate"
FAULTS_ADD = "console.add_fault"
FAULTS_REMOVE = "console.delete_fault"
DEAD_LETTERS_READ = "bus.view_deadletter"
DEAD_LETTERS_REDRIVE = "bus.change_deadletter"
LEVERS_PULL = "console.add_leverchange"
OPERATOR_PERMISSIONS = (
    SERVICES_SWITCH,
    LEVERS_PULL,
    FAULTS_ADD,
    FAULTS_REMOVE,
    DEAD_LETTERS_READ,
    DEAD_LETTERS_REDRIVE,
)


def _staff_json(permission: str | None = None) -> Callable[[View], View]:
    """JSON endpoints answer 403 (not a login redirect) to anyone who is not staff, or who lacks
    the ``permission`` the endpoint needs."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not (user.is_authenticated and user.is_active and user.is_staff):
                return JsonResponse(
                    {"error": "forbidden", "message": "staff only: sign in at /admin/login/"},
                    status=403,
                )
            if permission is not None and (refused := _lacks(request, permission)):
                return refused
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _lacks(request: HttpRequest, permission: str) -> HttpResponse | None:
    """403 for staff without ``permission`` (for a view whose methods need different ones)."""
    if request.user.has_perm(permission):
        return None
    return JsonResponse(
        {"error": "forbidden", "message": f"needs the permission {permission}"}, status=403
    )


def _staff_may(permission: str) -> Callable[[View], View]:
    """Console pages and forms: strangers go to the login page, staff without ``permission``
    get 403."""

    def decorate(view: View) -> View:
        return staff_member_required(permission_required(permission, raise_exception=True)(view))

    return decorate


def _who(request: HttpRequest) -> str:
    return request.user.get_username()


def _depths() -> dict[str, int | None]:
    try:
        return dict(queue_depths())
    except (OperationalError, OSError):
        return {s.queue: None for s in subscribers().values()}


# --- The contract's control endpoints -------------------------------------------------------------


@require_POST
@_staff_json(SERVICES_SWITCH)
def control_service(request: HttpRequest, name: str, action: str) -> HttpResponse:
    try:
        subscriber(name)
    except NotSubscribed:
        return error_response(ApiError(404, "unknown_service", f"no service {name!r}"))
    change = service_start if action == "start" else service_stop
    try:
        change(name=name, by=_who(request))
    except BrokerUnreachable as exc:
        return error_response(ApiError(503, "broker_unreachable", f"nothing changed: {exc}"))
    return ServiceSwitched(service=name, running=action == "start").response()


@require_GET
@_staff_json()
def control_queues(request: HttpRequest) -> HttpResponse:
    return JsonResponse(QueueDepths(_depths()).model_dump())


@require_http_methods(["GET", "POST"])
@_staff_json()
def control_levers(request: HttpRequest) -> HttpResponse:
    """GET the levers; POST one change (CONTRACT.md, "Levers") and get the whole document."""
    if request.method == "POST":
        if refused := _lacks(request, LEVERS_PULL):
            return refused
        try:
            wish = lever_validate(json_body(request))
        except ApiError as exc:
            return error_response(exc)
        lever_set(wish, by=_who(request))
    return LeversDocument.model_validate(levers_document()).response()


@require_http_methods(["GET", "POST"])
@_staff_json()
def control_faults(request: HttpRequest) -> HttpResponse:
    """GET the faults switched on; POST one to switch it on (201 with it)."""
    if request.method == "GET":
        return JsonResponse([_fault_item(f) for f in Fault.objects.all()], safe=False)
    if refused := _lacks(request, FAULTS_ADD):
        return refused
    try:
        wish = FaultRequest.parse(json_body(request))
    except ApiError as exc:
        return error_response(exc)
    problems = fault_problems(
        service=wish.service, kind=wish.kind, value=wish.value, order_id=wish.orderId
    )
    if problems:
        return error_response(ApiError.invalid(problems))
    fault = fault_add(
        service=wish.service,
        kind=wish.kind,
        # Only latency and failure take a value; the others ignore whatever came.
        value=wish.value if wish.value is not None and wish.kind in VALUED else 0.0,
        order_id=wish.orderId,
        by=_who(request),
    )
    return JsonResponse(_fault_item(fault), status=201)


@require_http_methods(["DELETE"])
@_staff_json(FAULTS_REMOVE)
def control_fault(request: HttpRequest, fault_id: int) -> HttpResponse:
    if fault_id > ID_MAX or not fault_remove(fault_id=fault_id, by=_who(request)):
        return error_response(ApiError(404, "unknown_fault", f"no fault #{fault_id} is on"))
    return HttpResponse(status=204)


@require_GET
@_staff_json()
def control_ledger(request: HttpRequest) -> HttpResponse:
    """The whole ledger, or with ``?order=<id>`` that order's verdict."""
    if "order" not in request.GET:
        return JsonResponse(ledger())
    fields = _Fields(request.GET)
    order_id = fields.whole("order", label="order (an order's id)")
    if order_id is None:
        problem = fields.errors.get("order", "order must be an order's id, e.g. ?order=17")
        return error_response(ApiError.invalid({"order": problem}))
    order = Order.objects.filter(pk=order_id).first() if order_id <= ID_MAX else None
    if order is None:
        return error_response(ApiError(404, "unknown_order", f"no order {order_id}"))
    return JsonResponse(ledger(order=order))


def _fault_item(fault: Fault) -> dict[str, Any]:
    return FaultItem(
        id=fault.pk,
        service=fault.service,
        kind=fault.kind,
        value=fault.value,
        orderId=fault.order_id,
    ).model_dump()


# --- Public: which services are down (the order swimlane and the shop show it) --------------------


@require_GET
def order_record(request: HttpRequest, order_id: int) -> HttpResponse:
    """The operator's record entries that touched one order: its page's markers on first load.

    Public like the order's page; an entry says only what changed, when, and the operator's
    username.
    """
    if order_id > ID_MAX or not Order.objects.filter(pk=order_id).exists():
        return error_response(ApiError(404, "unknown_order", f"no order #{order_id}"))
    entries = [record_json(e) for e in record_touching(order_id)]
    return JsonResponse({"orderId": order_id, "entries": entries})


@require_GET
def service_status(request: HttpRequest) -> HttpResponse:
    running = services_running()
    return JsonResponse(
        {
            "services": {name: {"running": up} for name, up in running.items()},
            "down": sorted(name for name, up in running.items() if not up),
            # What the levers give up now: every page's banner says it.
            "unsafe": levers_unsafe(),
        }
    )


# --- Console JSON ---------------------------------------------------------------------------------


@require_GET
@_staff_json()
def console_state(request: HttpRequest) -> HttpResponse:
    running = services_running()
    alive = workers_alive()
    depths = _depths()
    counters = delivery_counters()
    faults = [_fault_json(f) for f in Fault.objects.all()]
    return JsonResponse(
        {
            "services": [
                {
                    "name": s.name,
                    "queue": s.queue,
                    "running": running.get(s.name, True),
                    "alive": alive.get(s.queue, 0),
                    "waiting": depths.get(s.queue),
                    "counters": counters.get(s.name, {}),
                    "faults": [f for f in faults if f["service"] == s.name],
                }
                for s in subscribers().values()
            ],
            "orders": _orders_now(),
            "deadLetters": DeadLetter.objects.filter(redriven_at__isnull=True).count(),
            "crashes": _crashes_recent(),
            "record": [record_json(e) for e in record_recent()],
            "at": timezone.now().isoformat(),
        }
    )


@require_GET
@_staff_json()
def console_workers(request: HttpRequest) -> HttpResponse:
    try:
        return JsonResponse({"workers": consumers_by_worker(timeout=1.0)})
    except (OperationalError, OSError):
        return JsonResponse({"workers": {}, "error": "broker unreachable"})


@require_GET
@_staff_json()
def console_metrics(request: HttpRequest) -> HttpResponse:
    """The charts' figures, and the record's entries in their window (each chart's markers)."""
    now = timezone.now()
    figures = throughput(seconds=60)
    start = datetime.fromisoformat(figures["start"])
    return JsonResponse(
        {
            "throughput": figures,
            "latency": latency(seconds=60),
            "record": record_window(start, now),
            "at": now.isoformat(),
        }
    )


@require_GET
@_staff_json()
def console_events(request: HttpRequest) -> HttpResponse:
    fields = _Fields(request.GET)
    order_id, before = fields.whole("order"), fields.whole("before")
    if fields.errors:
        return error_response(ApiError.invalid(fields.errors))
    events, older = events_lifecycle(
        order_id=order_id,
        event_type=request.GET.get("type", "") if request.GET.get("type") in event_types() else "",
        troubled_only=request.GET.get("troubled") == "1",
        before=before,
    )
    return JsonResponse({"events": events, "older": older})


def _orders_now() -> dict[str, Any]:
    """Orders by status, and the newest still on their way (what a stopped service holds up)."""
    counts = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())
    waiting = Order.objects.filter(
        mode=Order.Mode.EVENTS, status__in=[OrderStatus.INITIATED, OrderStatus.CONFIRMED]
    ).order_by("-id")[:8]
    now = timezone.now()
    return {
        "byStatus": {status: counts.get(status, 0) for status in OrderStatus.values},
        "inFlight": [
            {
                "id": o.pk,
                "status": o.status,
                "ageSeconds": round((now - o.created_at).total_seconds()),
            }
            for o in waiting.only("id", "status", "created_at")
        ],
    }


def _crashes_recent(limit: int = 8) -> list[dict[str, Any]]:
    """The worker processes crash faults killed lately, and whether their event came back."""
    crashes = list(Crash.objects.all()[:limit])
    ids = [c.event_id for c in crashes]
    types = dict(Event.objects.filter(event_id__in=ids).values_list("event_id", "type"))
    handled = set(
        Delivery.objects.filter(event_id__in=ids, status=Delivery.Status.HANDLED).values_list(
            "event_id", "service"
        )
    )
    return [
        {
            "service": c.service,
            "orderId": c.order_id,
            "eventType": types.get(c.event_id, "an event"),
            "at": c.crashed_at.isoformat(),
            "cameBack": (c.event_id, c.service) in handled,
        }
        for c in crashes
    ]


def _fault_json(fault: Fault) -> dict[str, Any]:
    return {
        "id": fault.pk,
        "service": fault.service,
        "kind": fault.kind,
        "value": fault.value,
        "orderId": fault.order_id,
        "label": fault.label(),
    }


# --- Pages ----------------------------------------------------------------------------------------


def _nav(request: HttpRequest, active: str, **context: Any) -> dict[str, Any]:
    return {"console_active": active, **context}


@staff_member_required
@require_GET
def console_home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "console/home.html",
        _nav(
            request,
            "home",
            services=list(subscribers()),
            # PENDING_PAYMENT belongs to the request-response checkout and lasts milliseconds.
            statuses=[s for s in OrderStatus.values if s != OrderStatus.PENDING_PAYMENT],
            fault_kinds=Fault.Kind.choices,
            faults=Fault.objects.all(),
            lever_rows=_lever_rows(),
            lever_values={"idempotency": IDEMPOTENCY, "delivery": DELIVERY},
            record=record_recent(),
            reruns=reruns_recent(),
            schema_rows=[
                {"type": name, "versions": defined, "version": schema_versions()[name]}
                for name, defined in schema_types().items()
            ],
        ),
    )


def _lever_rows() -> list[dict[str, Any]]:
    doc = levers_document()
    return [
        {
            "service": name,
            "idempotency": doc["idempotency"][name],
            "delivery": doc["delivery"][name],
            "handles": doc["subscriptions"][name],
            # What its code can handle: each a switch of the subscription lever.
            "can_handle": sorted(s.handles),
        }
        for name, s in subscribers().items()
    ]


@_staff_may(LEVERS_PULL)
@require_POST
def console_reset(request: HttpRequest) -> HttpResponse:
    """Every lever to its default and every fault off, in one click."""
    reset = levers_reset(by=_who(request))
    if reset:
        messages.success(request, "back to the defaults: " + "; ".join(reset))
    else:
        messages.info(request, "every lever and fault was at its default already")
    return redirect("/console/#levers")


@_staff_may(FAULTS_ADD)
@require_POST
def console_fault_add(request: HttpRequest) -> HttpResponse:
    service = request.POST.get("service", "")
    kind = request.POST.get("kind", "")
    fields = _Fields(request.POST)
    value = fields.finite("value", label="the value")
    order_id = fields.whole("order_id", label="the order")
    problems = dict(fields.errors) or fault_problems(
        service=service, kind=kind, value=value, order_id=order_id
    )
    if problems:
        for message in problems.values():
            messages.error(request, message)
    else:
        fault = fault_add(
            service=service, kind=kind, value=value or 0.0, order_id=order_id, by=_who(request)
        )
        messages.success(request, f"switched on: {fault.label()}")
    return redirect("/console/#faults")


@_staff_may(FAULTS_REMOVE)
@require_POST
def console_fault_remove(request: HttpRequest, fault_id: int) -> HttpResponse:
    if fault_id <= ID_MAX and fault_remove(fault_id=fault_id, by=_who(request)):
        messages.success(request, f"fault #{fault_id} switched off")
    return redirect("/console/#faults")


@staff_member_required
@require_GET
def console_deliveries(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "console/events.html",
        _nav(
            request, "events", event_types=sorted(event_types()), order=request.GET.get("order", "")
        ),
    )


@_staff_may(DEAD_LETTERS_READ)
@require_GET
def console_dead_letters(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "waiting")
    letters = DeadLetter.objects.all()
    if show == "waiting":
        letters = letters.filter(redriven_at__isnull=True)
    rows = [
        {
            "letter": letter,
            "payload": json.dumps(mask_payload(letter.envelope.get("payload", {})), indent=2),
        }
        for letter in letters[:200]
    ]
    return render(request, "console/dead_letters.html", _nav(request, "dead", rows=rows, show=show))


@_staff_may(DEAD_LETTERS_REDRIVE)
@require_POST
def console_dead_letters_redrive(request: HttpRequest) -> HttpResponse:
    letters = DeadLetter.objects.filter(redriven_at__isnull=True)
    fields = _Fields(request.POST)
    one, ids = fields.whole("one"), fields.wholes("id")
    if fields.errors:
        messages.error(request, "nothing redriven: " + "; ".join(fields.errors.values()))
        return redirect("console_dead_letters")
    if one is not None:
        letters = letters.filter(pk=one)
    elif request.POST.get("all") != "1":
        letters = letters.filter(pk__in=ids)
    count = dead_letters_redrive(letters)
    if count:
        messages.success(request, f"{count} event(s) sent again through the same idempotent path")
    else:
        messages.info(request, "nothing to redrive: select at least one waiting dead letter")
    return redirect("console_dead_letters")


@staff_member_required
@require_GET
def console_topology(request: HttpRequest) -> HttpResponse:
    services = list(subscribers().values())
    now = subscriptions()
    schemas = json_schemas()
    types = event_types()
    matrix = [
        {
            "type": name,
            "producer": cls.producer,
            "version": cls.version,
            "description": cls.description,
            # "on": subscribed now; "can": its code handles it, unsubscribed (the lever).
            "cells": [
                "on" if name in now[s.name] else "can" if name in s.handles else ""
                for s in services
            ],
            "handlers": [
                f"{s.handles[name].__module__}.{s.handles[name].__qualname__}"
                for s in services
                if name in s.handles
            ],
        }
        for name, cls in types.items()
    ]
    return render(
        request,
        "console/topology.html",
        _nav(
            request,
            "topology",
            services=services,
            matrix=matrix,
            settings_rows=broker_settings(),
            schemas=[
                {
                    "type": schema["x-type"],
                    "version": schema["x-version"],
                    "producer": schema["x-producer"],
                    "json": json.dumps(schema, indent=2),
                }
                for schema in sorted(schemas.values(), key=lambda s: (s["x-type"], s["x-version"]))
            ],
        ),
    )


@staff_member_required
@require_GET
def console_schemas_json(request: HttpRequest) -> HttpResponse:
    return JsonResponse(json_schemas(), json_dumps_params={"indent": 2})


@staff_member_required
@require_GET
def console_orders(request: HttpRequest) -> HttpResponse:
    q = request.GET
    fields = _Fields(q)
    status = q.get("status", "") if q.get("status") in OrderStatus.values else ""
    filters = OrderFilter(
        status=status,
        product_id=fields.whole("product"),
        customer=q.get("customer", "").strip()[:120],
        since=fields.moment("since", label="From"),
        until=fields.moment("until", label="Until"),
        order_id=fields.whole("order", label="Order"),
    )
    before, after = fields.whole("before"), fields.whole("after")
    for message in fields.errors.values():
        messages.error(request, f"{message}: that filter is left out")
    page = orders_find(filters, before=before, after=after)
    keep = q.copy()
    for key in ("before", "after"):
        keep.pop(key, None)
    return render(
        request,
        "console/orders.html",
        _nav(
            request,
            "orders",
            page=page,
            filters=filters,
            query=keep.urlencode(),
            statuses=OrderStatus.values,
            products=Product.objects.order_by("pk"),
            customers_count=Customer.objects.count(),
            form=q,
        ),
    )


# --- The counterfactual re-run ------------------------------------------------------------------


# The flips the re-run form offers, as (lever, service or event type, value, label): each lever
# at every value but the one every order runs under now, so an order placed with payment's
# idempotency off can be run again with it on, and the other way round.
def _rerun_flips() -> list[dict[str, str]]:
    state = levers_state()
    flips = []
    for service in subscribers():
        for value in IDEMPOTENCY:
            if value != state["idempotency"][service]:
                label = f"idempotency {value} at {service}"
                flips.append(_flip("idempotency", service, value, label))
        for value in DELIVERY:
            if value != state["delivery"][service]:
                label = f"delivery {value} to {service}"
                flips.append(_flip("delivery", service, value, label))
    for name, defined in schema_types().items():
        for version in defined:
            if version != schema_versions()[name]:
                flips.append(_flip("schema", name, str(version), f"{name} v{version}"))
    for name, s in subscribers().items():
        if not s.subscribed_by_default:
            for event_type in sorted(s.handles):
                flips.append(
                    _flip("subscription", name, event_type, f"{name} subscribed to {event_type}")
                )
    return flips


def _rerun_example() -> dict[str, str]:
    """The article's example, whichever way payment's idempotency is now: off with a duplicate
    delivery (a double charge) while it is on for every order, and on while it is off."""
    now = levers_state()["idempotency"]["payment"]
    return {
        "flip": f"idempotency/payment/{'on' if now != 'on' else 'off'}",
        "fault": "duplicate/payment",
    }


def _flip(lever: str, target: str, value: str, label: str) -> dict[str, str]:
    return {"value": f"{lever}/{target}/{value}", "label": label, "lever": lever}


def _rerun_lever(raw: str) -> dict[str, Any]:
    """The form's "lever/service/value" as the body POST /control/levers takes."""
    lever, _, rest = raw.partition("/")
    target, _, value = rest.partition("/")
    if lever == "schema":
        return {
            "lever": lever,
            "eventType": target,
            "version": int(value) if value.isdigit() else value,
        }
    if lever == "subscription":
        return {"lever": lever, "service": target, "eventType": value, "value": "on"}
    return {"lever": lever or raw, "service": target, "value": value}


@staff_member_required
@require_http_methods(["GET", "HEAD", "POST"])
def order_rerun(request: HttpRequest, order_id: int) -> HttpResponse:
    """From a finished order, "run this again with …": the form, then both journeys."""
    original = (
        Order.objects.select_related("customer", "product").filter(pk=order_id).first()
        if order_id <= ID_MAX
        else None
    )
    if original is None:
        return render(request, "orders/rerun.html", {"missing": order_id}, status=404)
    problem, status = "", 200
    if request.method == "POST":
        if refused := _lacks(request, LEVERS_PULL):
            return refused
        fault, _, fault_service = (request.POST.get("fault") or "").partition("/")
        data = {
            **_rerun_lever(request.POST.get("flip", "")),
            "fault": fault,
            "faultService": fault_service,
        }
        try:
            placed = rerun_place(original=original, wish=rerun_validate(data), by=_who(request))
        except NotFinished:
            problem, status = _unfinished(original), 409
        except ApiError as exc:
            named = f" ({exc.field})" if exc.field else ""
            problem, status = f"nothing placed{named}: {exc.message}", exc.status
        else:
            return redirect(f"{request.path}?new={placed.pk}")
    reruns = reruns_of(original.pk)
    wanted = _Fields(request.GET).whole("new")
    chosen = next((r for r in reruns if r.order_id == wanted), reruns[0] if reruns else None)
    return render(
        request,
        "orders/rerun.html",
        {
            "original": original,
            "finished": original.status in TERMINAL_STATUSES,
            "unfinished": "" if original.status in TERMINAL_STATUSES else _unfinished(original),
            "problem": problem,
            "flips": _rerun_flips(),
            "services": list(subscribers()),
            "fault_kinds": [(k, Fault.Kind(k).label) for k in RERUN_FAULTS],
            "reruns": reruns,
            "chosen": chosen,
            "rerun_of": Rerun.objects.filter(order_id=original.pk).first(),
            "sides": _rerun_sides(original, chosen),
            # The article's example until the operator chooses another.
            "form": request.POST if request.method == "POST" else _rerun_example(),
            "schemas": schema_guide(),
        },
        status=status,
    )


def _flip_said(rerun: Rerun) -> str:
    return f"The same body, with {rerun.flip_and_fault()}, for this order only"


def _unfinished(order: Order) -> str:
    return (
        f"order {order.pk} is still {order.status}: a re-run starts from a finished order "
        "(SHIPPED or CANCELLED), so that there is a whole journey to compare it with"
    )


def _rerun_sides(original: Order, chosen: Rerun | None) -> list[dict[str, Any]]:
    """What each side of the comparison starts with: its order and its stored events."""
    orders = [original]
    if chosen and (placed := Order.objects.filter(pk=chosen.order_id).first()) is not None:
        orders.append(placed)
    sides = []
    for order in orders:
        events = event_messages(order.events.all())
        sides.append(
            {
                "orderId": order.pk,
                "status": events[-1]["status"] if events else order.status,
                "messages": events,
                "flip": _flip_said(chosen) if chosen and order.pk != original.pk else "",
            }
        )
    return sides


# --- Prometheus -----------------------------------------------------------------------------------


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Staff, or a scraper with ``Authorization: Bearer $METRICS_TOKEN`` when that is set."""
    token = settings.METRICS_TOKEN
    offered = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    user = request.user
    allowed = (user.is_authenticated and user.is_staff) or (
        bool(token) and hmac.compare_digest(offered.encode(), token.encode())
    )
    if not allowed:
        return HttpResponse(
            "staff or a metrics token only\n", status=403, content_type="text/plain"
        )
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)


# --- Parsing --------------------------------------------------------------------------------------

# ASCII digits only (``str.isdigit`` takes "²", which ``int`` refuses), and few enough that the
# number fits the 64-bit id columns.
_WHOLE_NUMBER = re.compile(r"#?([0-9]{1,18})")
_FIELD_MAX = 64


class _Fields:
    """A console form or query read field by field: each value parsed, or None when it is empty.

    A value that cannot be what its field holds is None too, and ``errors`` says why, by field
    name, so a page can show it and a JSON answer can name the field.
    """

    def __init__(self, data: QueryDict) -> None:
        self.data = data
        self.errors: dict[str, str] = {}

    def _raw(self, name: str) -> str:
        return (self.data.get(name) or "").strip()

    def _refuse(self, name: str, label: str | None, problem: str) -> None:
        self.errors.setdefault(name, f"{label or name} {problem}")

    def whole(self, name: str, *, label: str | None = None) -> int | None:
        raw = self._raw(name)
        if not raw:
            return None
        if (value := _whole_number(raw)) is None:
            self._refuse(name, label, "must be a whole number of at most 18 digits (0-9)")
        return value

    def wholes(self, name: str, *, label: str | None = None) -> list[int]:
        values = [_whole_number(raw) for raw in self.data.getlist(name)]
        if None in values:
            self._refuse(name, label, "must be whole numbers of at most 18 digits (0-9)")
            return []
        return [v for v in values if v is not None]

    def finite(self, name: str, *, label: str | None = None) -> float | None:
        raw = self._raw(name)
        if not raw:
            return None
        try:
            value = float(raw) if len(raw) <= _FIELD_MAX else math.nan
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            # nan cannot be stored (it reads back as NULL) and inf leaves as a bare Infinity,
            # which is not JSON.
            self._refuse(name, label, "must be a finite number (not nan or inf)")
            return None
        return value

    def moment(self, name: str, *, label: str | None = None) -> datetime | None:
        raw = self._raw(name)
        if not raw:
            return None
        try:
            value = parse_datetime(raw) if len(raw) <= _FIELD_MAX else None
            if value is not None:
                if timezone.is_naive(value):
                    value = timezone.make_aware(value)
                # A date at the edge of the calendar with an offset has no UTC time: the
                # database would overflow converting it.
                value.astimezone(UTC)
        except (ValueError, OverflowError):
            value = None
        if value is None:
            self._refuse(name, label, "must be a date and time such as 2026-01-31T09:30")
        return value


def _whole_number(raw: str) -> int | None:
    match = _WHOLE_NUMBER.fullmatch(raw.strip())
    return int(match.group(1)) if match else None
