"""``python -m bench.report [results.json]``: docs/performance.md, from the benchmark's last run.

``make bench`` runs the benchmark (bench/results.json) and then this, so the performance page
always shows the figures of one run, on the machine that produced them. ``--stdout`` prints
the page instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench.targets import FIGURES, TARGETS, targets_check

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "performance.md"
PLOT = PAGE.with_name("performance-growth.png")
# What a figure the run did not measure shows (results from before it was measured).
MISSING = "—"


def _target(key: str) -> str:
    for k, op, bound in TARGETS:
        if k == key:
            return f"{op.replace('>=', '≥').replace('<=', '≤')} {bound:g}"
    return ""


def headline(r: dict[str, Any]) -> str:
    # Judged here against today's targets, so a page from older results is judged the same way.
    met = targets_check(r)
    lines = ["| figure | measured | target | |", "|---|---:|---|---|"]
    for key, label in FIGURES:
        value = r.get(key)
        if key not in met:
            mark = ""
        elif value is None:
            mark = "not measured"
        else:
            mark = "met" if met[key] else "**not met**"
        lines.append(
            f"| {label} | {MISSING if value is None else value} | {_target(key)} | {mark} |"
        )
    return "\n".join(lines)


def _ms(s: dict[str, Any] | None) -> str:
    return MISSING if s is None else f"{s['p50']} / {s['p99']}"


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
        "p50 / p99 ms | POST /orders p50 / p99 ms | daphne CPU ms per message |",
        "|---:|---:|---:|---:|---:|---|---|---|---:|",
    ]
    for x in r["details"]["sockets_scaling"]:
        lines.append(
            f"| {x['sockets']} | {x['orders_per_s']:g} | {x['events']} | "
            f"{x['messages_delivered']} | {x['delivered_fraction']} | "
            f"{_ms(x['post_to_socket_ms'])} | {_ms(x['fanout_spread_ms'])} | "
            f"{_ms(x.get('post_ms'))} | {x['cpu_ms_per_message']['daphne']} |"
        )
    if (none := r["details"].get("no_sockets")) is not None:
        gap = f" {MISSING} |" * 5
        lines.append(f"| 0 | {none['orders_per_s']:g} |{gap} {_ms(none['post_ms'])} | {MISSING} |")
    return "\n".join(lines)


def machine(r: dict[str, Any]) -> str:
    m, v = r["machine"], r["versions"]
    load = ", ".join(f"{x:g}" for x in m.get("load_average_at_start", []))
    settings = r.get("settings", {})
    lines = [
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gb']:g} GB; Linux {m['kernel']}; "
        f"Python {m['python']}; load average at start {load or 'unknown'}.",
        f"- Checkout at commit `{v.get('checkout', 'unknown')}`; Django {v['Django']}, "
        f"Celery {v['celery']}, Channels {v['channels']}, daphne {v['daphne']}, "
        f"Redis server {v['redis-server']}.",
    ]
    for key in ("database", "broker_and_channel_layer", "worker", "web"):
        if key in settings:
            lines.append(f"- {key.replace('_', ' ').capitalize()}: {settings[key]}.")
    lines.append(f"- A {r.get('mode', 'full')} run of {r.get('duration_s', 0):g} s.")
    return "\n".join(lines)


def _span(values: list[float], spec: str) -> str:
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low} to {high}"


def growth(r: dict[str, Any]) -> str:
    """How the cost of an order and of a broadcast grows, in words, from the scaling runs."""
    rates = r["details"]["orders_per_s_scaling"]
    kept = [x for x in rates if x["shipped_per_s"] >= 0.95 * x["rate"]]
    behind = [x for x in rates if x not in kept]
    parts = []
    if kept:
        cpu = [x["cpu_ms_per_order"]["total"] for x in kept]
        p50 = [x["e2e_ms"]["p50"] for x in kept]
        parts.append(
            f"Up to {kept[-1]['rate']:g} orders/s offered the stack keeps up: an order costs "
            f"{_span(cpu, '.1f')} ms of CPU over all its processes and reaches SHIPPED in a p50 "
            f"of {_span(p50, '.0f')} ms."
        )
    if behind:
        first = behind[0]
        parts.append(
            f"At {first['rate']:g} orders/s offered it ships {first['shipped_per_s']:g}/s: the "
            f"cores are full and the queues grow; the time to SHIPPED is mostly waiting "
            f"(p50 {first['e2e_ms']['p50']:.0f} ms), and an order takes "
            f"{first['cpu_ms_per_order']['total']:.1f} ms of CPU."
        )
    flat = r["details"]["flat_out"]
    parts.append(
        f"Flat out ({flat['in_flight']} orders in flight) it ships "
        f"{flat['orders_per_s_shipped']:g} orders/s, {flat['tasks_per_order']:g} deliveries "
        "each; the worker takes "
        f"{flat['cpu_ms_per_order']['worker']:.1f} ms of CPU per order and daphne "
        f"{flat['cpu_ms_per_order']['daphne']:.1f} ms."
    )
    sockets = r["details"]["sockets_scaling"]
    one_rate = [x for x in sockets if x["orders_per_s"] == sockets[0]["orders_per_s"]]
    if len(one_rate) > 1:
        low, high = one_rate[0], one_rate[-1]
        parts.append(
            f"A broadcast is one Redis message per daphne process, written to each socket: "
            f"from {low['sockets']} to {high['sockets']} sockets the messages delivered go "
            f"from {low['messages_delivered']} to {high['messages_delivered']}, daphne's CPU per "
            f"delivered message from {low['cpu_ms_per_message']['daphne']:g} to "
            f"{high['cpu_ms_per_message']['daphne']:g} ms, and the p99 from a POST to its "
            f"OrderCreated on every socket from {low['post_to_socket_ms']['p99']:.0f} to "
            f"{high['post_to_socket_ms']['p99']:.0f} ms."
        )
    if (ratio := r.get("post_p99_sockets_ratio")) is not None:
        parts.append(
            f"With {r['sockets']} sockets open a POST /orders takes {ratio:g} times its p99 "
            "with none, at the same rate."
        )
    return " ".join(parts)


def limits(r: dict[str, Any]) -> str:
    """For each target the run missed, what limits it, from the run's own figures and the
    profile of one delivery (bench/cpu_paths.py, when ``make bench`` added it)."""
    met = targets_check(r)
    unmet = {key for key, ok in met.items() if ok is False}
    if not unmet:
        return "Every target is met."
    flat = r["details"]["flat_out"]
    cpu, per_order = flat["cpu_ms_per_order"], flat["tasks_per_order"]
    cores = r.get("machine", {}).get("cores", 2)
    bare = r.get("cpu_ms_per_task", {}).get("bare", {})
    parts = []
    if unmet & {"cpu_ms_per_order", "orders_per_s_shipped", "throughput_ratio"}:
        text = (
            f"**CPU per order, and so throughput.** Flat out an order takes {cpu['total']:g} ms "
            f"of CPU: the worker {cpu['worker']:g}, daphne {cpu['daphne']:g} (mostly the POST), "
            f"Redis {cpu['redis']:g}. The worker's share is {per_order:g} deliveries of about "
            f"{cpu['worker'] / max(per_order, 1):.1f} ms each, where bare Celery spends "
            f"{bare.get('total', MISSING)} ms per task in all its processes. {cores} cores "
            f"at that cost ship at most about {cores * 1000 / cpu['total']:.0f} orders/s."
        )
        if paths := r.get("cpu_paths"):
            prof = paths["profiled"]
            spent = sorted(prof["parts_ms"].items(), key=lambda kv: -kv[1])
            text += (
                f" Where a delivery goes, from a solo worker under cProfile "
                f"(`python -m bench.cpu_paths`, {paths['orders']} orders; wall time, waits "
                f"included, {prof['ms_per_delivery_profiled']:g} ms in all): "
                + ", ".join(f"{name} {ms:g} ms" for name, ms in spent)
                + f". Each delivery is a transaction of {prof['sql_statements_per_delivery']:g} "
                f"SQL statements (BEGIN and COMMIT included) and "
                f"{prof['redis_sends_per_delivery']:g} Redis commands (the task's fetch, then "
                "the publishes). Bare Celery also writes each task to kombu's unacked hash and "
                "removes it at the ack, two MULTI/EXEC round trips; the checkout leaves that to "
                "its reconciler, which sends again what a killed worker held (settings: "
                "ack_emulation). "
                "The hot statements are compiled once (services/bus/rows.py) and a broadcast "
                "is one PUBLISH from the committing thread; what is left is the work itself: "
                "a write transaction per delivery with its inbox row and its record, Celery's "
                "and kombu's handling of each task message, and a publish per subscriber. "
                "Cutting further is structural: fewer deliveries per order (the order service "
                "takes three), the inbox row and the delivery record as one row, or one "
                "process feeding the live pages from the log instead of every delivery."
            )
        parts.append(text)
    if unmet & {"e2e_p99_ms", "latency_ratio"}:
        at20 = [x for x in r["details"]["orders_per_s_scaling"] if x["rate"] == 20]
        busy = ""
        if at20:
            share = at20[0]["cpu_ms_per_order"]["total"] * 20 / 10 / cores
            busy = (
                f" At 20 orders/s the checkout keeps {share:.0f}% of the {cores} cores busy, so "
                "a delivery often waits for a core."
            )
        parts.append(
            f"**Time to SHIPPED.** The path is two deliveries in series (payment or inventory, "
            f"then the notification's join) and a broadcast, each delivery a transaction; bare "
            f"Celery's 4-task chain takes {r.get('bare_chain4_p50_ms')} ms at "
            f"p50 because its tasks do nothing.{busy} The p99 ({r.get('e2e_p99_ms')} ms) is that "
            "queueing; it falls with the CPU per delivery."
        )
    if "max_idle_hop_ms" in unmet:
        idle = r["details"].get("idle", {})
        parts.append(
            f"**The idle hop.** On an idle stack a hop (one event to the next it causes, "
            f"slowest: {idle.get('slowest_hop', MISSING)}) takes a p50 of "
            f"{idle.get('hop_ms', {}).get('p50', MISSING)} ms: the broker's wake-up, prefork's "
            "hand-off to a pool process, and the delivery's own work up to its emit. The "
            "delivery's work is most of it; a 5 ms hop needs a cheaper delivery first."
        )
    if "post_vs_minimal_write" in unmet:
        http = r["details"].get("http", {})
        parts.append(
            f"**POST /orders.** daphne spends {http.get('post_cpu_ms', MISSING)} ms of CPU per "
            f"order against {http.get('minimal_write_cpu_ms', MISSING)} ms for the minimal "
            "outbox write: the difference is the body's validation, the rate limit's Redis "
            "round trip, a publish per subscriber of OrderCreated and the broadcast to the "
            "live pages, with its read of the order's history. Both pay the same server: one "
            "hand-off to a kept thread per request, and a reused database connection."
        )
    if "post_p99_sockets_ratio" in unmet:
        runs = r["details"]["sockets_scaling"]
        most = max(runs, key=lambda x: (x["sockets"], -x["orders_per_s"]))
        none = r["details"].get("no_sockets", {}).get("post_ms") or {}
        with_ = most.get("post_ms") or {}
        parts.append(
            f"**POST /orders beside {most['sockets']} sockets.** Each p99 comes from "
            f"{with_.get('n', MISSING)} POSTs, so it is the slowest one or two and moves a lot "
            f"from run to run; the p50 goes from {none.get('p50', MISSING)} ms with no socket "
            f"to {with_.get('p50', MISSING)} ms. The POST shares daphne's one event loop with "
            "the fan-out, which writes each event to every socket in one pass (first to last "
            f"socket: p50 {most['fanout_spread_ms']['p50']} ms per event), so a POST that "
            "arrives during one waits for it."
        )
    return "\n\n".join(parts)


def _socket_runs(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The socket runs at the first run's rate: the number of sockets is all that changes."""
    runs = r["details"]["sockets_scaling"]
    return [x for x in runs if runs and x["orders_per_s"] == runs[0]["orders_per_s"]]


def plottable(r: dict[str, Any]) -> bool:
    """Whether the run measured growth: more than one rate and more than one socket count."""
    return len(r["details"]["orders_per_s_scaling"]) > 1 and len(_socket_runs(r)) > 1


def growth_plot(r: dict[str, Any], path: Path) -> None:
    """Two small panels: CPU per order against the rate offered, and daphne's CPU per message
    and the socket p99 against the number of sockets."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (by_rate, by_sockets) = pyplot.subplots(1, 2, figsize=(9.5, 3.4), dpi=100)
    rates = r["details"]["orders_per_s_scaling"]
    offered = [x["rate"] for x in rates]
    for part in ("total", "worker", "daphne"):
        by_rate.plot(offered, [x["cpu_ms_per_order"][part] for x in rates], marker="o", label=part)
    bound = next(b for k, _op, b in TARGETS if k == "cpu_ms_per_order")
    by_rate.axhline(bound, linestyle="--", color="grey", linewidth=1, label="target, total")
    by_rate.set(
        xlabel="orders/s offered",
        ylabel="CPU ms per order",
        title="Cost of an order",
        ylim=(0, None),
    )
    by_rate.legend(frameon=False)
    runs = _socket_runs(r)
    counts = [x["sockets"] for x in runs]
    by_sockets.plot(
        counts, [x["cpu_ms_per_message"]["daphne"] for x in runs], marker="o", color="C2"
    )
    by_sockets.set(
        xscale="log",
        xlabel=f"feed sockets ({runs[0]['orders_per_s']:g} order/s)",
        ylabel="daphne CPU ms per message",
        title="Cost of a broadcast",
        ylim=(0, None),
    )
    by_sockets.yaxis.label.set_color("C2")
    p99 = by_sockets.twinx()
    p99.plot(counts, [x["post_to_socket_ms"]["p99"] for x in runs], marker="s", color="C3")
    p99.set(ylabel="POST to every socket, p99 ms", ylim=(0, None))
    p99.yaxis.label.set_color("C3")
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    pyplot.close(figure)


def page(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            "# Performance",
            "",
            "The checkout against bare Celery on one machine, by `make bench` (`python -m bench`, "
            "then `python -m bench.report`, which writes this page from `bench/results.json`). "
            "Every timing is taken by the client. Do not edit this page by hand: run the "
            "benchmark.",
            "",
            "## The machine",
            "",
            machine(r),
            "",
            "## The last run",
            "",
            headline(r),
            "",
            "## What limits it",
            "",
            limits(r),
            "",
            "## How cost grows",
            "",
            growth(r),
            "",
            *([f"![How cost grows]({PLOT.name})", ""] if plottable(r) else []),
            "Orders offered at a steady rate:",
            "",
            rates(r),
            "",
            "Feed sockets, each of which must receive every event:",
            "",
            sockets(r),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("results", nargs="?", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--stdout", action="store_true", help="print the page, write nothing")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    text = page(results)
    if args.stdout:
        print(text, end="")
    else:
        PAGE.write_text(text)
        print(f"wrote {PAGE}", file=sys.stderr)
        if plottable(results):
            growth_plot(results, PLOT)
            print(f"wrote {PLOT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
