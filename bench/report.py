"""``python -m bench.report [results.json]``: the README's performance tables, in Markdown."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import TARGETS

ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    ("bare_tasks_per_s", "bare Celery: no-op tasks published and drained, per s"),
    ("pipeline_tasks_per_s", "checkout flat out: task executions per s"),
    ("throughput_ratio", "throughput ratio (pipeline / bare)"),
    ("bare_chain4_p50_ms", "bare Celery 4-task chain, p50 ms"),
    ("bare_chain4_p99_ms", "bare Celery 4-task chain, p99 ms"),
    ("e2e_p50_ms", "POST /orders to SHIPPED on /ws/orders/<id>/ at 20 orders/s, p50 ms"),
    ("e2e_p99_ms", "the same, p99 ms"),
    ("latency_ratio", "latency ratio (e2e p50 / chain p50)"),
    ("orders_per_s_shipped", "orders shipped per s, flat out, sustained"),
    ("post_orders_per_s", "POST /orders per s (worker paused)"),
    ("noop_view_per_s", "GET /healthz (no-op view) per s, same server and client"),
    ("post_ratio", "POST ratio (orders / no-op)"),
    ("sockets", "concurrent /ws/events/ sockets, each needing every event"),
    ("socket_delivered_fraction", "fraction of events every socket received"),
    ("socket_p99_ms", "POST to its OrderCreated on every socket, p99 ms"),
    ("rss_mb", "peak RSS of the whole stack, MB"),
    ("max_idle_hop_ms", "slowest broker hop on an idle pipeline, ms"),
)


def _target(key: str) -> str:
    for k, op, bound in TARGETS:
        if k == key:
            return f"{op.replace('>=', '≥').replace('<=', '≤')} {bound:g}"
    return ""


def headline(r: dict[str, Any]) -> str:
    met = r.get("targets_met", {})
    lines = ["| figure | value | target | |", "|---|---:|---|---|"]
    for key, label in ROWS:
        mark = "" if key not in met else ("met" if met[key] else "**not met**")
        lines.append(f"| {label} | {r.get(key)} | {_target(key)} | {mark} |")
    return "\n".join(lines)


def _ms(s: dict[str, Any]) -> str:
    return f"{s['p50']} / {s['p99']}"


def rates(r: dict[str, Any]) -> str:
    lines = [
        "| orders/s offered | shipped/s | e2e p50 / p99 ms | POST p50 / p99 ms "
        "| CPU ms per order: worker / daphne / Redis / total |",
        "|---:|---:|---|---|---|",
    ]
    for x in r["details"]["orders_per_s_scaling"]:
        c = x["cpu_ms_per_order"]
        lines.append(
            f"| {x['rate']:g} | {x['shipped_per_s']} | {_ms(x['e2e_ms'])} | {_ms(x['post_ms'])} "
            f"| {c['worker']:.1f} / {c['daphne']:.1f} / {c['redis']:.1f} / {c['total']:.1f} |"
        )
    return "\n".join(lines)


def sockets(r: dict[str, Any]) -> str:
    lines = [
        "| sockets | orders/s | events | messages delivered | delivered fraction "
        "| POST to OrderCreated on each socket p50 / p99 ms | first-to-last socket spread "
        "p50 / p99 ms | daphne CPU ms per message |",
        "|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for x in r["details"]["sockets_scaling"]:
        lines.append(
            f"| {x['sockets']} | {x['orders_per_s']:g} | {x['events']} | "
            f"{x['messages_delivered']} | {x['delivered_fraction']} | "
            f"{_ms(x['post_to_socket_ms'])} | {_ms(x['fanout_spread_ms'])} | "
            f"{x['cpu_ms_per_message']['daphne']} |"
        )
    return "\n".join(lines)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results.json"
    r = json.loads(path.read_text())
    print(headline(r))
    print()
    print(rates(r))
    print()
    print(sockets(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
