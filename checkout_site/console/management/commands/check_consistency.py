"""Check the books of the whole checkout from the database alone (orders/consistency.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from checkout_site.console.consistency import consistency_check


class Command(BaseCommand):
    help = (
        "Check every invariant: orders terminal or within their deadline, stock + reserved == "
        "initial, one charge per shipped order, a refund per cancelled charge, status == fold. "
        "Exits non-zero naming the orders that break one."
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
            self.stdout.write(str(violation))
        self.stdout.write(
            f"{report.orders} orders and {report.products} products checked, "
            f"{report.in_flight} in flight, {len(report.violations)} violations"
        )
        if not report.clean:
            named = ", ".join(map(str, report.order_ids)) or "none"
            raise CommandError(f"{len(report.violations)} invariant violations; orders: {named}")
