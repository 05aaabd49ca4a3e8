"""Run the outbox relay and the reconciler.

The relay sends events that committed but did not reach the broker; the reconciler, every
RECONCILE_INTERVAL_SECONDS, sends again what a service has not handled within its deadline.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from services.bus.reconciler import Reconciler
from services.bus.relay import outbox_relay

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Loop: publish outbox rows left unsent (broker down at commit, process killed), and "
        "send again what a service has not handled in time (broker lost it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between passes")
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args: Any, interval: float, once: bool, **options: Any) -> None:
        running = True

        def _stop(*_: Any) -> None:
            nonlocal running
            running = False

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        reconciler = Reconciler()
        next_reconcile = time.monotonic() + settings.RECONCILE_INTERVAL_SECONDS
        while running:
            try:
                sent = outbox_relay()
                if sent:
                    log.info("relay sent %s events", sent)
                if once or time.monotonic() >= next_reconcile:
                    next_reconcile = time.monotonic() + settings.RECONCILE_INTERVAL_SECONDS
                    report = reconciler.run()
                    if report.sent:
                        log.info("reconciler sent %s events again", len(report.sent))
            except Exception:
                # The database or broker may be restarting; the next pass tries again.
                log.warning("relay pass failed", exc_info=True)
                close_old_connections()
            if once:
                return
            time.sleep(interval)
