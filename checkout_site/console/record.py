"""The operator's record: every lever pulled and every fault switched on or off, with who and
when, and the markers it puts on the live pages.

An entry is written in the same transaction as the change it records (``record_lever``,
``record_fault``), so the record never names a change that rolled back. After the commit it
goes to the open pages of the orders it touched (``orders.live.order_notices_send``); the
console's charts read it with their figures (``record_window``), and an order's page reads
what touched it when it opens (``record_touching``).

An entry touches an order when it happened while the order was in flight (from its first
event to its terminal one, or on from the first event while it has none), or when it names
the order (a fault for that order alone). ``entry_touches`` is that rule; the two selectors
ask the database the same question from either side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Q

from checkout_site.console.metrics import TERMINAL_EVENTS
from checkout_site.console.models import Fault, LeverChange, RecordEntry, Rerun
from orders.live import order_notices_send
from orders.models import TERMINAL_STATUSES, Order
from services.bus.models import Event

# The socket message kind of a marker on an order's page (pages ignore kinds they do not know).
NOTICE_KIND = "record"
# An order's page shows at most this many markers (the newest), and a change reaches the open
# pages of at most this many orders in flight (the newest): past that, a page reloaded shows it.
TOUCHING_MAX = 100
LIVE_ORDERS_MAX = 500


def record_lever(change: LeverChange) -> RecordEntry:
    """The entry for one pull, at the pull's own time."""
    entry = RecordEntry.objects.create(
        action=RecordEntry.Action.LEVER,
        label=change.label(),
        at=change.changed_at,
        by=change.changed_by,
        lever_change=change,
    )
    _announce_on_commit(entry)
    return entry


def record_fault(fault: Fault, *, on: bool, by: str) -> RecordEntry:
    """The entry for a fault switched on or off: "fault on: duplicate delivery at payment"."""
    scope = f" (order {fault.order_id})" if fault.order_id else ""
    entry = RecordEntry.objects.create(
        action=RecordEntry.Action.FAULT_ON if on else RecordEntry.Action.FAULT_OFF,
        label=f"fault {'on' if on else 'off'}: {fault.what()} at {fault.service}{scope}",
        by=by,
        order_id=fault.order_id,
        fault_id=fault.pk,
    )
    _announce_on_commit(entry)
    return entry


def record_rerun(rerun: Rerun) -> RecordEntry:
    """The entry for a counterfactual re-run: its flip, for the one order it placed."""
    fault = f", with {rerun.fault_label()}" if rerun.fault else ""
    scope = f"for order {rerun.order_id} only (re-run of {rerun.original_id})"
    entry = RecordEntry.objects.create(
        action=RecordEntry.Action.LEVER,
        label=f"{rerun.flip()} {scope}{fault}",
        by=rerun.created_by,
        order_id=rerun.order_id,
    )
    _announce_on_commit(entry)
    return entry


def _announce_on_commit(entry: RecordEntry) -> None:
    transaction.on_commit(lambda: record_announce(entry))


def record_json(entry: RecordEntry) -> dict[str, Any]:
    """An entry as the pages read it. ``by`` is the operator's username, never more."""
    return {
        "id": entry.pk,
        "at": entry.at.isoformat(),
        "action": entry.action,
        "label": entry.label,
        "by": entry.by,
        "orderId": entry.order_id,
    }


def record_recent(limit: int = 20) -> list[RecordEntry]:
    return list(RecordEntry.objects.all()[:limit])


def record_window(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The entries a chart spanning ``start``..``end`` marks, oldest first."""
    entries = RecordEntry.objects.filter(at__gte=start, at__lte=end).order_by("at", "id")
    return [record_json(e) for e in entries[:TOUCHING_MAX]]


@dataclass(frozen=True)
class Flight:
    """When an order was in flight: from its first event to its terminal one (None: not yet)."""

    order_id: int
    first: datetime | None
    end: datetime | None


def order_flight(order_id: int) -> Flight:
    events = Event.objects.filter(order_id=order_id)
    first = events.aggregate(at=Min("occurred_at"))["at"]
    end = events.filter(type__in=TERMINAL_EVENTS).aggregate(at=Min("occurred_at"))["at"]
    return Flight(order_id=order_id, first=first, end=end)


def entry_touches(*, at: datetime, named: int | None, flight: Flight) -> bool:
    """The rule: an entry that names an order touches that order alone (a fault or a re-run for
    one order changes nothing for the others); one for every order touches those in flight."""
    if named is not None:
        return named == flight.order_id
    if flight.first is None or at < flight.first:
        return False
    return flight.end is None or at <= flight.end


def record_touching(order_id: int) -> list[RecordEntry]:
    """The entries that touched the order, oldest first (the newest ``TOUCHING_MAX``)."""
    flight = order_flight(order_id)
    touching = Q(order_id=order_id)
    if flight.first is not None:
        during = Q(order_id__isnull=True, at__gte=flight.first)
        if flight.end is not None:
            during &= Q(at__lte=flight.end)
        touching |= during
    newest = list(RecordEntry.objects.filter(touching).order_by("-at", "-id")[:TOUCHING_MAX])
    return newest[::-1]


def orders_touched_now(entry: RecordEntry) -> list[int]:
    """The orders a change that just happened touches: the one it names, or those in flight.

    In flight is read from the orders' status (not yet SHIPPED or CANCELLED), which the order
    service keeps in step with the log; an order with no event yet is not in flight.
    """
    if entry.order_id is not None:
        return [entry.order_id] if Order.objects.filter(pk=entry.order_id).exists() else []
    has_events = Event.objects.filter(order_id=OuterRef("pk"))
    in_flight = (
        Order.objects.exclude(status__in=TERMINAL_STATUSES)
        .filter(Exists(has_events))
        .order_by("-pk")
        .values_list("pk", flat=True)[:LIVE_ORDERS_MAX]
    )
    return sorted(in_flight)


def record_announce(entry: RecordEntry) -> None:
    """Put the entry's marker on the open pages of the orders it touched."""
    order_notices_send(
        orders_touched_now(entry), {"kind": NOTICE_KIND, "entry": record_json(entry)}
    )
