"""What a re-run placed an order under: read once per order and process, then kept.

A re-run's ``Rerun`` row is stored in its order's own transaction and never changes, so an
answer, "none" included, holds for as long as the order exists: a process pays one query per
order it sees, and a delivery a dict lookup. The process that placed an order without one is
told so (``rerun_none``) and pays no query for it. The console's re-run (rerun.py) writes the rows;
its order-scoped levers and the fault hooks (faults.py) read them here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from checkout_site.console.models import Rerun, lever_label

SUBSCRIPTION = "subscription"


@dataclass(frozen=True)
class RerunLevers:
    """The re-run's levers, as ``hooks.OrderLevers`` asks for them (the order-scoped provider)."""

    order_id: int
    original_id: int
    lever: str
    service: str
    value: str
    event_type: str
    fault: str
    fault_service: str

    @property
    def note(self) -> str:
        flip = lever_label(
            lever=self.lever,
            service=self.service,
            value=self.value,
            event_type=self.event_type,
            replay=False,
        )
        return f"{flip}, order {self.order_id} only"


# The answers of the orders seen last, oldest first; a delivery asks several times, so a read
# is a plain dict lookup, without the lock that only writers take.
_KNOWN_MAX = 4096
_known: dict[int, RerunLevers | None] = {}
_known_lock = threading.Lock()
_UNKNOWN = object()


def rerun_for(order_id: int) -> RerunLevers | None:
    """The re-run that placed ``order_id``, or None for an order placed any other way."""
    known = _known.get(order_id, _UNKNOWN)
    if known is not _UNKNOWN:
        return known  # type: ignore[return-value]
    row = Rerun.objects.filter(order_id=order_id).first()
    levers = None
    if row is not None:
        levers = RerunLevers(
            order_id=row.order_id,
            original_id=row.original_id,
            lever=row.lever,
            service=row.service,
            value=row.value,
            event_type=row.event_type,
            fault=row.fault,
            fault_service=row.fault_service,
        )
    _know(order_id, levers)
    return levers


def rerun_none(order_id: int) -> None:
    """``order_id`` committed with no re-run of its own (the bus's ``order_unscoped``)."""
    _know(order_id, None)


def _know(order_id: int, levers: RerunLevers | None) -> None:
    with _known_lock:
        _known[order_id] = levers
        while len(_known) > _KNOWN_MAX:
            del _known[next(iter(_known))]


def reruns_forget() -> None:
    """Drop this process's answers (a test whose database was rolled back reuses order ids)."""
    with _known_lock:
        _known.clear()


def rerun_fault(*, service: str, kind: str, order_id: int) -> str:
    """The label of the re-run's fault when it acts here (this order, service and kind), or ""."""
    rerun = rerun_for(order_id)
    if rerun is None or rerun.fault != kind or rerun.fault_service != service:
        return ""
    return f"re-run's {kind} at {service}, order {order_id} only"
