"""Run the outbox relay: send events that committed but did not reach the broker."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from services.bus.relay import outbox_relay

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Loop: publish outbox rows left unsent (broker down at commit, process killed)."

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
        while running:
            try:
                sent = outbox_relay()
                if sent:
                    log.info("relay sent %s events", sent)
            except Exception:
                # The database or broker may be restarting; the next pass tries again.
                log.warning("relay pass failed", exc_info=True)
                close_old_connections()
            if once:
                return
            time.sleep(interval)
