"""Figures of the running checkout, read from the database (the one truth every process shares).

The console's charts and ``/metrics`` for Prometheus both come from here. Counters are derived
from rows (deliveries, dead letters, events, orders), so any number of web processes and workers
report the same numbers, and they match the database by construction.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from checkout_site.console.models import Fault
from orders.models import Order
from services.bus.models import DeadLetter, Delivery, Event
from services.bus.registry import subscribers

QUANTILES = (0.5, 0.95, 0.99)
TERMINAL_EVENTS = ("OrderShipped", "OrderCancelled")
# Enough to draw the last minute at a few hundred events a second without reading the whole log.
_SCAN_CHUNK = 2000
_SCAN_MAX = 60_000


def delivery_counters() -> dict[str, dict[str, int]]:
    """Per service: handled, duplicates skipped, attempts retried, events dead-lettered."""
    counters = {
        name: {"handled": 0, "duplicate": 0, "retried": 0, "dead_lettered": 0}
        for name in subscribers()
    }
    rows = Delivery.objects.values("service").annotate(
        handled=Count("pk", filter=Q(status=Delivery.Status.HANDLED)),
        duplicate=Sum("duplicates"),
        retried=Sum("retries"),
    )
    for row in rows:
        entry = counters.setdefault(
            row["service"], {"handled": 0, "duplicate": 0, "retried": 0, "dead_lettered": 0}
        )
        entry.update(
            handled=row["handled"] or 0,
            duplicate=row["duplicate"] or 0,
            retried=row["retried"] or 0,
        )
    for service, count in DeadLetter.objects.values_list("service").annotate(n=Count("pk")):
        counters.setdefault(
            service, {"handled": 0, "duplicate": 0, "retried": 0, "dead_lettered": 0}
        )["dead_lettered"] = count
    return counters


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 (None when there is nothing to rank)."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for q in QUANTILES:
        key = f"p{round(q * 100)}"
        out[key] = ordered[max(math.ceil(q * len(ordered)) - 1, 0)] if ordered else None
    out["count"] = len(ordered)
    return out


def _recent_event_times(since: datetime) -> Iterator[datetime]:
    """Times of events stored since ``since``, newest first, walking the log back by seq."""
    before: int | None = None
    scanned = 0
    while scanned < _SCAN_MAX:
        rows = Event.objects.order_by("-seq")
        if before is not None:
            rows = rows.filter(seq__lt=before)
        chunk = list(rows.values_list("seq", "occurred_at")[:_SCAN_CHUNK])
        for _seq, occurred_at in chunk:
            if occurred_at < since:
                return
            yield occurred_at
        if len(chunk) < _SCAN_CHUNK:
            return
        scanned += len(chunk)
        before = chunk[-1][0]


def throughput(*, seconds: int = 60) -> dict[str, Any]:
    """Orders placed and events stored in each of the last ``seconds`` seconds (oldest first)."""
    now = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    since = now - timedelta(seconds=seconds)

    def buckets(times: Iterable[datetime]) -> list[int]:
        counts = Counter(int((t - since).total_seconds()) for t in times)
        return [counts.get(i, 0) for i in range(seconds)]

    orders = Order.objects.filter(created_at__gte=since).values_list("created_at", flat=True)
    return {
        "start": since.isoformat(),
        "seconds": seconds,
        "orders": buckets(orders.iterator()),
        "events": buckets(_recent_event_times(since)),
    }


def latency(*, seconds: int = 300, limit: int = 5000) -> dict[str, Any]:
    """Percentiles (ms) over the last ``seconds``: order end to end, and its two bus parts.

    ``e2e``: order stored -> its SHIPPED/CANCELLED event stored (orders that finished).
    ``wait``: an event stored -> a worker of the subscribing service picked it up (commit,
    publish, time in the queue, and any retry backoff). ``handler``: the service's transaction.
    The third part, push to the browser, is measured by the browser itself (console.js).
    """
    since = timezone.now() - timedelta(seconds=seconds)
    created = dict(
        Order.objects.filter(created_at__gte=since, mode=Order.Mode.EVENTS)
        .order_by("-id")
        .values_list("id", "created_at")[:limit]
    )
    finished = Event.objects.filter(order_id__in=list(created), type__in=TERMINAL_EVENTS)
    e2e = [
        (occurred_at - created[order_id]).total_seconds() * 1000
        for order_id, occurred_at in finished.values_list("order_id", "occurred_at")
    ]
    deliveries = list(
        Delivery.objects.filter(settled_at__gte=since, status=Delivery.Status.HANDLED)
        .order_by("-settled_at")
        .values_list("wait_ms", "handler_ms")[: limit * 4]
    )
    return {
        "seconds": seconds,
        "e2e": percentiles(e2e),
        "wait": percentiles(w for w, _ in deliveries if w is not None),
        "handler": percentiles(h for _, h in deliveries if h is not None),
    }


class CheckoutCollector(Collector):
    """Reads the figures at each scrape; a short cache spares the database a scrape storm."""

    def __init__(self, cache_seconds: float = 1.0) -> None:
        self.cache_seconds = cache_seconds
        self._cached: tuple[float, list[Metric]] = (float("-inf"), [])

    def collect(self) -> Iterator[Metric]:
        loaded_at, metrics = self._cached
        if time.monotonic() - loaded_at >= self.cache_seconds:
            metrics = list(self._read())
            self._cached = (time.monotonic(), metrics)
        yield from metrics

    def _read(self) -> Iterator[Metric]:
        from checkout_site.console.control import services_running
        from services.bus.broker import queue_depths

        families = {
            kind: CounterMetricFamily(
                f"checkout_deliveries_{kind}",
                f"Deliveries to a service, {text}",
                labels=["service"],
            )
            for kind, text in (
                ("handled", "handled (the handler's transaction committed)"),
                ("duplicate", "recognised by the inbox as duplicates and skipped"),
                ("retried", "attempts that failed and were retried"),
                ("dead_lettered", "given up on and stored as dead letters"),
            )
        }
        for service, counts in sorted(delivery_counters().items()):
            for kind, family in families.items():
                family.add_metric([service], counts[kind])
        yield from families.values()

        orders = CounterMetricFamily("checkout_orders_created", "Orders placed", labels=["mode"])
        by_status = GaugeMetricFamily("checkout_orders", "Orders by status", labels=["status"])
        for mode, n in Order.objects.values_list("mode").annotate(n=Count("pk")).order_by():
            orders.add_metric([mode], n)
        for status, n in Order.objects.values_list("status").annotate(n=Count("pk")).order_by():
            by_status.add_metric([status], n)
        yield orders
        yield by_status

        events = CounterMetricFamily("checkout_events_stored", "Events stored", labels=["type"])
        for type_, n in Event.objects.values_list("type").annotate(n=Count("pk")).order_by():
            events.add_metric([type_], n)
        yield events

        depth = GaugeMetricFamily(
            "checkout_queue_depth", "Messages waiting in a service queue", labels=["queue"]
        )
        for queue, n in queue_depths().items():
            depth.add_metric([queue], n)
        yield depth

        running = GaugeMetricFamily(
            "checkout_service_running", "1 if the service consumes its queue", labels=["service"]
        )
        for service, is_running in services_running().items():
            running.add_metric([service], 1 if is_running else 0)
        yield running

        faults = GaugeMetricFamily(
            "checkout_faults_active", "Injected faults switched on", labels=["service", "kind"]
        )
        for service, kind, n in (
            Fault.objects.values_list("service", "kind").annotate(n=Count("pk")).order_by()
        ):
            faults.add_metric([service, kind], n)
        yield faults

        figures = latency()
        for key, name, text in (
            ("e2e", "checkout_order_latency_seconds", "Order stored to shipped or cancelled"),
            ("wait", "checkout_delivery_wait_seconds", "Event stored to picked up by a service"),
            ("handler", "checkout_handler_seconds", "A service's handler transaction"),
        ):
            family = GaugeMetricFamily(
                name, f"{text}, last {figures['seconds']} s", labels=["quantile"]
            )
            for q in QUANTILES:
                value = figures[key][f"p{round(q * 100)}"]
                if value is not None:
                    family.add_metric([str(q)], value / 1000)
            yield family
