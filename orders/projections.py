"""Rebuilding the stored status of every order from the log (the log is the truth)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from orders.aggregator import status_fold
from orders.models import Order
from services.bus.models import Event


@dataclass
class RebuildReport:
    checked: int = 0
    differences: list[tuple[int, str, str]] = field(default_factory=list)


def projections_rebuild(*, fix: bool, batch: int = 2000) -> RebuildReport:
    report = RebuildReport()
    last_id = 0
    while True:
        orders = list(
            Order.objects.filter(pk__gt=last_id, mode=Order.Mode.EVENTS)
            .order_by("pk")
            .values_list("pk", "status")[:batch]
        )
        if not orders:
            return report
        last_id = orders[-1][0]
        types: dict[int, list[str]] = defaultdict(list)
        rows = Event.objects.filter(order_id__in=[pk for pk, _ in orders])
        for order_id, type_ in rows.values_list("order_id", "type"):
            types[order_id].append(type_)
        for pk, stored in orders:
            report.checked += 1
            folded = status_fold(types[pk])
            if folded != stored:
                report.differences.append((pk, stored, folded.value))
                if fix:
                    with transaction.atomic():
                        Order.objects.filter(pk=pk).update(status=folded)
