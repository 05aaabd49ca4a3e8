"""Faults the operator injects on purpose: latency, failures, duplicates, declines, no stock.

They are rows (``Fault``), so every web process and worker sees the same ones. The table is read
at most once a second per process: the hot path of a delivery pays a dict lookup, not a query.
Each fault that acts is noted in the current delivery's record (``faults_recording``), so the
console shows it on the event and attempt it changed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from services.bus.models import Fault

CACHE_SECONDS = 1.0

_cache: tuple[float, tuple[ActiveFault, ...]] = (float("-inf"), ())
_applied: ContextVar[list[str] | None] = ContextVar("faults_applied", default=None)


class InjectedFailure(RuntimeError):
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


@contextmanager
def faults_recording(*already: str) -> Iterator[list[str]]:
    """Collect the labels of faults that act inside the block (for the delivery's record)."""
    applied = [a for a in already if a]
    token = _applied.set(applied)
    try:
        yield applied
    finally:
        _applied.reset(token)


def fault_note(label: str) -> None:
    applied = _applied.get()
    if applied is not None and label not in applied:
        applied.append(label)


def faults_before_handler(*, service: str, order_id: int) -> None:
    """Added latency, then a failure with the configured probability: before the transaction."""
    latency = fault_find(service=service, kind=Fault.Kind.LATENCY, order_id=order_id)
    if latency is not None and latency.value > 0:
        fault_note(latency.label)
        time.sleep(latency.value / 1000)
    failure = fault_find(service=service, kind=Fault.Kind.FAILURE, order_id=order_id)
    if failure is not None and random.random() < failure.value:
        fault_note(failure.label)
        raise InjectedFailure(f"injected failure ({failure.label})")


def fault_forced(*, service: str, kind: str, order_id: int) -> ActiveFault | None:
    """The one hook the payment and inventory cores ask: is this outcome forced for the order?"""
    fault = fault_find(service=service, kind=kind, order_id=order_id)
    if fault is not None:
        fault_note(fault.label)
    return fault


def fault_duplicate(*, service: str, order_id: int) -> ActiveFault | None:
    return fault_find(service=service, kind=Fault.Kind.DUPLICATE, order_id=order_id)
