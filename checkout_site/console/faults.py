"""Faults the operator injects on purpose: latency, failures, duplicates, declines, no stock,
and a worker process that dies in the handler.

They are rows (``Fault``), so every web process and worker sees the same ones. The table is read
at most once a second per process: the hot path of a delivery pays a dict lookup, not a query.

Nothing in the bus or a service knows of them. ``faults_install`` (from the console's app
config) hooks them in from outside: latency and failures on the bus's "delivery about to run"
hook, duplicates on its "publishing" hook, and a forced decline or out-of-stock as a wrapper
around the gateway the payment service and the rule the inventory service are given. Each fault
that acts is noted on the current delivery (``delivery_note``), so the console shows it on the
event and attempt it changed.

A crash kills the worker's pool process (``os._exit``) on the first delivery of each event to
the service, once: what happens to the message then is the delivery lever's to show. At least
once, the broker hands it back and the second try (noted on its record) goes through; at most
once it was acknowledged already, and is lost.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass

from celery import current_task
from django.db import IntegrityError, transaction

from checkout_site.console.models import Crash, Fault
from checkout_site.console.order_scope import rerun_fault
from checkout_site.console.record import record_fault
from services.bus import hooks
from services.bus.hooks import DeliveryFailure, delivery_note
from services.bus.registry import subscribers
from services.inventory import stock
from services.payment import payments

log = logging.getLogger(__name__)

CACHE_SECONDS = 1.0
# Which faults make sense where: a forced decline only at payment, out of stock only at
# inventory; None is every service.
FAULT_SERVICES: dict[str, tuple[str, ...] | None] = {
    Fault.Kind.LATENCY: None,
    Fault.Kind.FAILURE: None,
    Fault.Kind.DUPLICATE: None,
    Fault.Kind.DECLINE: ("payment",),
    Fault.Kind.OUT_OF_STOCK: ("inventory",),
    Fault.Kind.CRASH: None,
}
# The kinds that take a value (milliseconds, a rate).
VALUED = (Fault.Kind.LATENCY, Fault.Kind.FAILURE)
# What a worker process exits with when a crash fault kills it (EX_SOFTWARE).
CRASH_EXIT_CODE = 70

_cache: tuple[float, tuple[ActiveFault, ...]] = (float("-inf"), ())


class InjectedFailure(DeliveryFailure):
    """Raised on purpose by a failure-rate fault; retried and dead-lettered like any error."""


class InjectedCrash(DeliveryFailure):
    """A crash fault outside a worker (an in-process delivery): it fails the attempt instead of
    killing the process that runs the tests or serves the pages."""


@dataclass(frozen=True)
class ActiveFault:
    id: int
    service: str
    kind: str
    value: float
    order_id: int | None
    label: str

    def applies_to(self, service: str, order_id: int | None) -> bool:
        return self.service == service and self.order_id in (None, order_id)


def faults_active() -> tuple[ActiveFault, ...]:
    global _cache
    loaded_at, faults = _cache
    now = time.monotonic()
    if now - loaded_at < CACHE_SECONDS:
        return faults
    faults = tuple(
        ActiveFault(f.pk, f.service, f.kind, f.value, f.order_id, f.label())
        for f in Fault.objects.all()
    )
    _cache = (now, faults)
    return faults


def faults_forget() -> None:
    """Drop this process's cached table, after it changed the faults itself."""
    global _cache
    _cache = (float("-inf"), ())


def fault_find(*, service: str, kind: str, order_id: int | None) -> ActiveFault | None:
    """The fault of ``kind`` acting on this order at ``service``: one the operator switched
    on, or the one a re-run placed the order with (id 0: it is no row of the table)."""
    for fault in faults_active():
        if fault.kind == kind and fault.applies_to(service, order_id):
            return fault
    if order_id is not None and (
        label := rerun_fault(service=service, kind=kind, order_id=order_id)
    ):
        return ActiveFault(0, service, kind, 0.0, order_id, label)
    return None


def fault_problems(
    *, service: str, kind: str, value: float | None, order_id: int | None
) -> dict[str, str]:
    """What is wrong with a fault before it is added, by field; empty when it may be added."""
    if kind not in Fault.Kind.values:
        return {"kind": f"kind must be one of {', '.join(Fault.Kind.values)}"}
    allowed = FAULT_SERVICES[kind]
    if service not in subscribers() or (allowed is not None and service not in allowed):
        where = ", ".join(allowed or subscribers())
        return {"service": f"{kind} can be injected into {where}"}
    if kind == Fault.Kind.FAILURE and not (value is not None and 0 < value <= 1):
        return {"value": "a failure rate is a number above 0 and at most 1 (1 = always)"}
    if kind == Fault.Kind.LATENCY and not (value is not None and 0 < value <= 30_000):
        return {"value": "latency is in milliseconds, above 0 and at most 30000"}
    if order_id is not None and not 0 < order_id < 2**63:
        return {"orderId": "the order is a positive integer, or absent for every order"}
    return {}


def fault_add(
    *, service: str, kind: str, value: float = 0, order_id: int | None = None, by: str = ""
) -> Fault:
    """Switch a fault on; the operator's record says so, in the same transaction."""
    with transaction.atomic():
        fault = Fault.objects.create(
            service=service, kind=kind, value=value, order_id=order_id, created_by=by
        )
        record_fault(fault, on=True, by=by)
    faults_forget()
    return fault


def fault_remove(*, fault_id: int, by: str = "") -> bool:
    """Switch a fault off; False (and nothing recorded) when no such fault is on."""
    with transaction.atomic():
        fault = Fault.objects.select_for_update().filter(pk=fault_id).first()
        if fault is not None:
            record_fault(fault, on=False, by=by)
            fault.delete()
    faults_forget()
    return fault is not None


def faults_before_handler(service: str, order_id: int) -> None:
    """Added latency, then a failure with the configured probability: before the transaction."""
    latency = fault_find(service=service, kind=Fault.Kind.LATENCY, order_id=order_id)
    if latency is not None and latency.value > 0:
        delivery_note(latency.label)
        time.sleep(latency.value / 1000)
    failure = fault_find(service=service, kind=Fault.Kind.FAILURE, order_id=order_id)
    if failure is not None and random.random() < failure.value:
        delivery_note(failure.label)
        raise InjectedFailure(f"injected failure ({failure.label})")
    crash = fault_find(service=service, kind=Fault.Kind.CRASH, order_id=order_id)
    if crash is not None:
        _crash_once(crash)


def _crash_once(crash: ActiveFault) -> None:
    """Kill this worker process on the first delivery of the event to the service."""
    context = hooks.delivery_context()
    if context is None:
        return
    try:
        with transaction.atomic():
            Crash.objects.create(
                fault_id=crash.id,
                service=context.service,
                event_id=context.event_id,
                order_id=context.order_id,
            )
    except IntegrityError:
        # Crashed on this event before: this is the message coming back.
        delivery_note(f"{crash.label}: came back after the crash")
        return
    if not _in_worker():
        delivery_note(crash.label)
        raise InjectedCrash(f"injected crash ({crash.label}), not in a worker process")
    log.warning("%s: killing worker process %s", crash.label, os.getpid())
    os._exit(CRASH_EXIT_CODE)


def _in_worker() -> bool:
    task = current_task
    return bool(task) and not task.request.is_eager and not task.request.called_directly


def fault_forced(*, service: str, kind: str, order_id: int) -> ActiveFault | None:
    """Is this outcome forced for the order? Noted on the delivery when it is."""
    fault = fault_find(service=service, kind=kind, order_id=order_id)
    if fault is not None:
        delivery_note(fault.label)
    return fault


def fault_copies(service: str, order_id: int) -> list[str]:
    duplicate = fault_find(service=service, kind=Fault.Kind.DUPLICATE, order_id=order_id)
    return [duplicate.label] if duplicate is not None else []


@dataclass(frozen=True)
class DecliningGateway:
    """The payment service's gateway, but a decline fault turns a charge into a decline."""

    inner: payments.Gateway

    def decide(self, *, order_id: int, token: str) -> payments.Decision:
        decision = self.inner.decide(order_id=order_id, token=token)
        if decision.ok and (
            forced := fault_forced(service="payment", kind=Fault.Kind.DECLINE, order_id=order_id)
        ):
            return payments.Decision(False, f"card declined by injected {forced.label}"[:200])
        return decision


@dataclass(frozen=True)
class EmptyShelfRule:
    """The inventory service's rule, but an out-of-stock fault refuses every reservation."""

    inner: stock.ReserveRule

    def allows(self, *, order_id: int) -> bool:
        forced = fault_forced(service="inventory", kind=Fault.Kind.OUT_OF_STOCK, order_id=order_id)
        return not forced and self.inner.allows(order_id=order_id)


def faults_install() -> None:
    hooks.on_delivery(faults_before_handler)
    hooks.on_publish(fault_copies)
    if not isinstance(payments.payment_gateway(), DecliningGateway):
        payments.payment_gateway_use(DecliningGateway(payments.payment_gateway()))
    if not isinstance(stock.reserve_rule(), EmptyShelfRule):
        stock.reserve_rule_use(EmptyShelfRule(stock.reserve_rule()))
