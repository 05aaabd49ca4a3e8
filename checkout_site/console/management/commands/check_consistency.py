"""Check the books of the whole checkout from the database alone (console/consistency.py, the
same check as GET /control/ledger)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from checkout_site.console.consistency import consistency_check


class Command(BaseCommand):
    help = (
        "Check every invariant: orders terminal or within their deadline, stock + reserved == "
        "initial, one charge per order net of refunds, one reservation and one e-mail of each "
        "kind per order, a refund per cancelled charge, status == fold, every stored event "
        "handled, waiting or dead-lettered by each subscriber. Exits non-zero naming the "
        "orders that break one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--deadline",
            type=float,
            default=None,
            help="seconds an order may take (default: ORDER_DEADLINE_SECONDS)",
        )

    def handle(self, *args: Any, deadline: float | None, **options: Any) -> None:
        report = consistency_check(deadline_s=deadline)
        for violation in report.violations:
            self.stdout.write(f"{violation.invariant}: {violation}")
        for name, counts in report.subscribers.items():
            self.stdout.write(
                f"{name}: {counts['handled']} handled, {counts['waiting']} waiting, "
                f"{counts['deadLettered']} dead-lettered, {counts['overdue']} overdue"
            )
        self.stdout.write(
            f"{report.orders} orders and {report.products} products checked, "
            f"{report.in_flight} in flight, {len(report.violations)} violations"
        )
        if not report.clean:
            named = ", ".join(map(str, report.order_ids)) or "none"
            raise CommandError(f"{len(report.violations)} invariant violations; orders: {named}")
