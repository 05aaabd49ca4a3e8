"""Load a running deployment with orders and watch them through to SHIPPED.

    python -m bench.loadtest --url http://127.0.0.1:8000 --rate 20 --duration 30
    python -m bench.loadtest --concurrency 48 --duration 60 --no-follow
    python -m bench.loadtest --rate 2 --sockets 1000

It talks to the deployment only over HTTP and WebSocket (bench/load.py), so it needs no access
to its database or broker, and no Django. Orders are real: point it at a shop you may fill with
test orders.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bench.client import Target
from bench.load import FeedSockets, LoadRun, summary, wait_until


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadtest",
        description="Place orders against a deployment; report throughput and latency as it goes.",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the deployment")
    load = parser.add_mutually_exclusive_group()
    load.add_argument("--rate", type=float, help="orders per second, open loop (default 20)")
    load.add_argument("--concurrency", type=int, help="orders in flight, closed loop (flat out)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument(
        "--sockets",
        type=int,
        default=0,
        help="also hold this many /ws/events/ clients, each of which must get every event",
    )
    parser.add_argument(
        "--no-follow",
        action="store_true",
        help="do not open /ws/orders/<id>/ per order; watch the event feed instead",
    )
    parser.add_argument("--user", type=int, default=123)
    parser.add_argument("--product", type=int, default=456)
    parser.add_argument("--quantity", type=int, default=1)
    parser.add_argument("--token", default="tok_loadtest")
    parser.add_argument("--settle", type=float, default=30.0, help="wait per order, seconds")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    options = vars(parser.parse_args(argv))
    try:
        target = Target.parse(options["url"])
    except ValueError as exc:
        parser.error(str(exc))
    if options["duration"] <= 0:
        parser.error("--duration must be positive")
    result = asyncio.run(_run(target, options))
    print(json.dumps(result, indent=2) if options["json"] else _text(result))
    if result["accepted"] == 0:
        print("no order was accepted; see the errors above", file=sys.stderr)
        return 1
    return 0


async def _run(target: Target, options: dict[str, Any]) -> dict[str, Any]:
    follow = not options["no_follow"]
    n_sockets = options["sockets"] or (0 if follow else 1)
    feed = None
    if n_sockets:
        feed = FeedSockets(target, n_sockets)
        print(f"opening {n_sockets} /ws/events/ sockets...", file=sys.stderr)
        await feed.open()
    concurrency = options["concurrency"] or 0
    rate = 0.0 if concurrency else (options["rate"] or 20.0)
    run = LoadRun(
        target,
        rate=rate,
        concurrency=concurrency,
        duration=options["duration"],
        follow=follow,
        feed=feed,
        settle=options["settle"],
        body={
            "userId": options["user"],
            "productId": options["product"],
            "quantity": options["quantity"],
            "paymentToken": options["token"],
        },
        label=f"{rate:g}/s" if rate else f"x{concurrency}",
    )
    stats = await run.run()
    result: dict[str, Any] = {
        "url": f"http://{target.authority}",
        "mode": f"{rate:g} orders/s" if rate else f"{concurrency} in flight",
        "duration_s": options["duration"],
        "posted": stats.posted,
        "accepted": stats.accepted,
        "shipped": stats.shipped,
        "cancelled": stats.cancelled,
        "errors": stats.errors,
        "timeouts": stats.timeouts,
        "accepted_per_s": round(stats.accepted / options["duration"], 2),
        "completed_per_s": round(run.completed_per_s(), 2),
        "post_ms": summary(stats.post_ms),
        "e2e_ms": summary(stats.e2e_ms),
        "error_samples": stats.error_samples,
    }
    if feed is not None:
        await wait_until(feed.complete, 10)
        result["sockets"] = {
            "n": feed.n,
            "events": len(feed.expected()),
            "delivered_fraction": round(feed.delivered_fraction(), 6),
            "in_order": feed.in_order(),
        }
        feed.close()
    return result


def _text(r: dict[str, Any]) -> str:
    def ms(s: dict[str, Any]) -> str:
        return f"p50 {s['p50']} / p90 {s['p90']} / p99 {s['p99']} / max {s['max']} ms"

    lines = [
        f"{r['url']}, {r['mode']} for {r['duration_s']:g} s",
        f"  orders: {r['accepted']} accepted of {r['posted']} posted, {r['shipped']} shipped, "
        f"{r['cancelled']} cancelled, {r['errors']} errors, {r['timeouts']} timed out",
        f"  throughput: {r['accepted_per_s']} accepted/s, {r['completed_per_s']} completed/s",
        f"  POST /orders: {ms(r['post_ms'])}",
        f"  POST to SHIPPED/CANCELLED on the socket: {ms(r['e2e_ms'])}",
    ]
    if "sockets" in r:
        s = r["sockets"]
        lines.append(
            f"  {s['n']} feed sockets: {s['events']} events, delivered fraction "
            f"{s['delivered_fraction']}, in order: {s['in_order']}"
        )
    lines += [f"  ! {e}" for e in r["error_samples"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
