"""Faults the operator injects on purpose: latency, failures, duplicates, declines, no stock.

They are rows (``Fault``), so every web process and worker sees the same ones. The table is read
at most once a second per process: the hot path of a delivery pays a dict lookup, not a query.

Nothing in the bus or a service knows of them. ``faults_install`` (from the console's app
config) hooks them in from outside: latency and failures on the bus's "delivery about to run"
hook, duplicates on its "publishing" hook, and a forced decline or out-of-stock as a wrapper
around the gateway the payment service and the rule the inventory service are given. Each fault
that acts is noted on the current delivery (``delivery_note``), so the console shows it on the
event and attempt it changed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from checkout_site.console.models import Fault
from services.bus import hooks
from services.bus.hooks import DeliveryFailure, delivery_note
from services.inventory import stock
from services.payment import payments

CACHE_SECONDS = 1.0

_cache: tuple[float, tuple[ActiveFault, ...]] = (float("-inf"), ())


class InjectedFailure(DeliveryFailure):
    """Raised on purpose by a failure-rate fault; retried and dead-lettered like any error."""


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
    for fault in faults_active():
        if fault.kind == kind and fault.applies_to(service, order_id):
            return fault
    return None


def fault_add(
    *, service: str, kind: str, value: float = 0, order_id: int | None = None, by: str = ""
) -> Fault:
    fault = Fault.objects.create(
        service=service, kind=kind, value=value, order_id=order_id, created_by=by
    )
    faults_forget()
    return fault


def fault_remove(*, fault_id: int) -> bool:
    deleted, _ = Fault.objects.filter(pk=fault_id).delete()
    faults_forget()
    return bool(deleted)


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
