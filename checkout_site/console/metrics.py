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

from django.db.models import Count, DurationField, ExpressionWrapper, F, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from checkout_site.console.models import Fault
from orders.models import Order, OrderStatus
from services.bus.models import DeadLetter, Delivery, Event
from services.bus.registry import subscribers
from services.bus.schemas import event_types

QUANTILES = (0.5, 0.95, 0.99)
# Upper bounds (seconds) of the latency histograms: a hop takes milliseconds, an order a second.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
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
        from checkout_site.console.heartbeat import workers_alive
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
        # Every label value the contract knows is reported, 0 included: an absent series and a
        # zero look alike in a dashboard, but not to rate() or an alert on "== 0".
        per_mode = dict(Order.objects.values_list("mode").annotate(n=Count("pk")).order_by())
        for mode in Order.Mode.values:
            orders.add_metric([mode], per_mode.get(mode, 0))
        per_status = dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())
        for status in OrderStatus.values:
            by_status.add_metric([status], per_status.get(status, 0))
        yield orders
        yield by_status

        events = CounterMetricFamily("checkout_events_stored", "Events stored", labels=["type"])
        per_type = dict(Event.objects.values_list("type").annotate(n=Count("pk")).order_by())
        for type_ in sorted({*event_types(), *per_type}):
            events.add_metric([type_], per_type.get(type_, 0))
        yield events

        depth = GaugeMetricFamily(
            "checkout_queue_depth", "Messages waiting in a service queue", labels=["queue"]
        )
        for queue, n in queue_depths().items():
            depth.add_metric([queue], n)
        yield depth

        running = GaugeMetricFamily(
            "checkout_service_running",
            "1 if the operator wants the service consuming its queue",
            labels=["service"],
        )
        for service, is_running in services_running().items():
            running.add_metric([service], 1 if is_running else 0)
        yield running

        alive = GaugeMetricFamily(
            "checkout_queue_consumers_alive",
            "Workers consuming the queue that sent a heartbeat in the last few seconds",
            labels=["queue"],
        )
        beating = workers_alive()
        for subscriber in subscribers().values():
            alive.add_metric([subscriber.queue], beating.get(subscriber.queue, 0))
        yield alive

        faults = GaugeMetricFamily(
            "checkout_faults_active", "Injected faults switched on", labels=["service", "kind"]
        )
        for service, kind, n in (
            Fault.objects.values_list("service", "kind").annotate(n=Count("pk")).order_by()
        ):
            faults.add_metric([service, kind], n)
        yield faults

        yield _histogram(
            "checkout_delivery_wait_seconds",
            "Event stored to picked up by its subscriber (commit, publish, queue, backoff)",
            _delivery_values("wait_ms"),
        )
        yield _histogram(
            "checkout_handler_seconds",
            "A service's handler transaction, per handled delivery",
            _delivery_values("handler_ms"),
        )
        yield _histogram(
            "checkout_order_duration_seconds",
            "Event-driven order stored to its OrderShipped or OrderCancelled stored",
            _order_durations(),
        )


def _histogram(name: str, text: str, values: _Buckets) -> HistogramMetricFamily:
    """A cumulative histogram over every row so far: any number of processes report one."""
    counts, total, count = values
    buckets = [(str(bound), counts[i]) for i, bound in enumerate(BUCKETS)]
    family = HistogramMetricFamily(name, text)
    family.add_metric([], [*buckets, ("+Inf", count)], total)
    return family


_Buckets = tuple[list[int], float, int]


def _delivery_values(field: str) -> _Buckets:
    """One aggregate query: how many handled deliveries took at most each bound."""
    rows = Delivery.objects.filter(status=Delivery.Status.HANDLED, **{f"{field}__isnull": False})
    figures = rows.aggregate(
        total=Sum(field),
        count=Count("pk"),
        **{
            f"le{i}": Count("pk", filter=Q(**{f"{field}__lte": b * 1000}))
            for i, b in enumerate(BUCKETS)
        },
    )
    counts = [figures[f"le{i}"] for i in range(len(BUCKETS))]
    return counts, (figures["total"] or 0) / 1000, figures["count"]


def _order_durations() -> _Buckets:
    finished = Event.objects.filter(order_id=OuterRef("pk"), type__in=TERMINAL_EVENTS)
    orders = (
        Order.objects.filter(mode=Order.Mode.EVENTS)
        .annotate(finished_at=Subquery(finished.order_by("seq").values("occurred_at")[:1]))
        .filter(finished_at__isnull=False)
        .annotate(
            took=ExpressionWrapper(F("finished_at") - F("created_at"), output_field=DurationField())
        )
    )
    figures = orders.aggregate(
        total=Sum("took"),
        count=Count("pk"),
        **{
            f"le{i}": Count("pk", filter=Q(took__lte=timedelta(seconds=b)))
            for i, b in enumerate(BUCKETS)
        },
    )
    counts = [figures[f"le{i}"] for i in range(len(BUCKETS))]
    total = figures["total"].total_seconds() if figures["total"] else 0.0
    return counts, total, figures["count"]
