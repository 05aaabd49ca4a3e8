"""Recompute every order's status from the event log and report the ones that differ."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.projections import projections_rebuild


class Command(BaseCommand):
    help = "Fold every event-driven order's events again; report and (unless --check) fix drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="report only, change nothing")

    def handle(self, *args: Any, check: bool, **options: Any) -> None:
        report = projections_rebuild(fix=not check)
        for order_id, stored, folded in report.differences:
            self.stdout.write(f"order {order_id}: stored {stored}, events say {folded}")
        self.stdout.write(f"{report.checked} orders checked, {len(report.differences)} differ")
        if report.differences and check:
            raise CommandError("projections differ from the event log")
