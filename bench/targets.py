"""The benchmark's headline figures, in the order both its table and docs/performance.md show
them, and the targets they are judged against."""

from __future__ import annotations

from typing import Any

FIGURES = (
    ("bare_tasks_per_s", "bare Celery: no-op tasks published and drained, per s"),
    ("pipeline_tasks_per_s", "checkout flat out: task executions per s"),
    ("throughput_ratio", "throughput ratio (pipeline / bare)"),
    ("bare_chain4_p50_ms", "bare Celery 4-task chain, p50 ms"),
    ("bare_chain4_p99_ms", "bare Celery 4-task chain, p99 ms"),
    ("e2e_p50_ms", "POST /orders to SHIPPED on /ws/orders/<id>/ at 20 orders/s, p50 ms"),
    ("e2e_p99_ms", "the same, p99 ms"),
    ("latency_ratio", "latency ratio (e2e p50 / chain p50)"),
    ("orders_per_s_shipped", "orders shipped per s, flat out, sustained"),
    ("cpu_ms_per_order", "CPU ms per shipped order, flat out, all processes"),
    ("post_orders_per_s", "POST /orders per s (worker paused)"),
    ("minimal_write_per_s", "minimal outbox write (an order, its event, a publish) per s, same"),
    ("post_vs_minimal_write", "POST ratio (orders / minimal outbox write)"),
    ("post_cpu_ms", "daphne CPU ms per POST /orders"),
    ("minimal_write_cpu_ms", "daphne CPU ms per minimal outbox write"),
    ("noop_view_per_s", "GET /healthz (no-op view) per s, same server and client"),
    ("post_ratio", "POST ratio (orders / no-op)"),
    ("sockets", "concurrent /ws/events/ sockets, each needing every event"),
    ("socket_delivered_fraction", "fraction of events every socket received"),
    ("socket_p99_ms", "POST to its OrderCreated on every socket, p99 ms"),
    ("post_p99_sockets_ratio", "POST /orders p99 with those sockets open / with none, same rate"),
    ("rss_mb", "peak RSS of the whole stack, MB"),
    ("max_idle_hop_ms", "slowest broker hop on an idle pipeline, ms"),
)

# (figure, direction, bound). The socket figures count only with every socket served.
TARGETS = (
    ("cpu_ms_per_order", "<=", 20.0),
    ("orders_per_s_shipped", ">=", 60.0),
    ("throughput_ratio", ">=", 0.5),
    ("latency_ratio", "<=", 2.0),
    ("e2e_p99_ms", "<=", 50.0),
    ("max_idle_hop_ms", "<=", 5.0),
    ("post_vs_minimal_write", ">=", 0.7),
    ("sockets", ">=", 1000),
    ("socket_delivered_fraction", ">=", 1.0),
    ("socket_p99_ms", "<=", 250.0),
    ("post_p99_sockets_ratio", "<=", 3.0),
)


def targets_check(results: dict[str, Any]) -> dict[str, bool]:
    """Each target's figure against its bound; a figure not measured is not met."""
    met = {}
    for key, op, bound in TARGETS:
        value = results.get(key)
        met[key] = value is not None and (value >= bound if op == ">=" else value <= bound)
    return met
