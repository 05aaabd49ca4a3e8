"""``python -m bench.cpu_paths``: where the CPU of one order goes, by cProfile, without the noise.

py-spy (bench/profile.py) watches the real stack under load, but on shared cores its samples
mix work with waiting. This runs the two paths of an order in single processes instead: N
``POST /orders`` through Django's test client (the view, the transaction, the outbox flush),
then a solo Celery worker under cProfile that drains every delivery those orders cause. It
writes the CPU per request and per delivery, and the functions that take it, to
bench/out/cpu-paths.txt (not committed).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from checkout_site import processes
from checkout_site.processes import ROOT

OUT = ROOT / "bench" / "out"


def _stats(path: str, limit: int = 40) -> str:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("cumulative").print_stats(limit)
    text = out.getvalue().replace(str(ROOT) + "/", "")
    return text.replace(".venv/lib/python3.11/site-packages/", "~/")


def _post(client: Any) -> None:
    from bench.load import ARTICLE_ORDER

    response = client.post("/orders", data=ARTICLE_ORDER, content_type="application/json")
    if response.status_code != 202:
        raise SystemExit(
            f"POST /orders answered {response.status_code}: {response.content[:300]!r}"
        )


def _solo_worker(
    env: dict[str, str], queues: list[str], log: Path, profile_to: Path | None = None
) -> processes.Process:
    command = processes.worker_command(
        "cpu-paths",
        queues,
        options=["-P", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"],
    )
    if profile_to is not None:
        command = [command[0], "-m", "cProfile", "-o", str(profile_to), *command[1:]]
    return processes.Process("worker", command, env=env, log=log, stop_timeout=120)


# Where a delivery's time goes, as parts of ``services/bus/tasks.py:deliver`` (cProfile's
# cumulative times: they include waiting for Redis and SQLite, which a CPU profile would not).
_PARTS = {
    "handlers": [
        ("orders/handlers.py", "order_react"),
        ("services/payment/handlers.py", "on_order_created"),
        ("services/inventory/handlers.py", "on_order_created"),
        ("services/notification/handlers.py", "on_order_event"),
    ],
    "broadcast to the live pages": [("orders/live.py", "events_broadcast")],
    "publish to the broker (outbox)": [("services/bus/outbox.py", "outbox_flush")],
    "the delivery's record": [("services/bus/deliveries.py", "delivery_handled")],
    "levers and faults": [
        ("services/bus/hooks.py", "policy_for"),
        ("services/bus/hooks.py", "delivery_run"),
    ],
    "validating the envelope": [("services/bus/schemas.py", "envelope_validate")],
}


def breakdown(path: str) -> dict[str, Any]:
    """Per delivery: the time of each part, the SQL statements and the Redis commands sent."""
    stats = pstats.Stats(path).stats
    deliveries = total = 0.0
    found: dict[str, float] = dict.fromkeys(_PARTS, 0.0)
    statements = sends = 0
    for (file, _line, name), (_cc, calls, _tt, cumulative, _callers) in stats.items():
        if file.endswith("services/bus/tasks.py") and name == "deliver":
            deliveries, total = calls, cumulative
        for part, functions in _PARTS.items():
            if any(file.endswith(f) and name == n for f, n in functions):
                found[part] += cumulative
        if "execute" in name and "CursorWrapper" in name:
            statements += calls
        if name == "<method 'sendall' of '_socket.socket' objects>":
            sends += calls
    per = max(deliveries, 1)
    parts = {k: round(v * 1000 / per, 3) for k, v in found.items()}
    parts["the rest (task, transaction, inbox)"] = round(
        (total - sum(found.values())) * 1000 / per, 3
    )
    return {
        "deliveries": int(deliveries),
        "ms_per_delivery_profiled": round(total * 1000 / per, 3),
        "parts_ms": parts,
        "sql_statements_per_delivery": round(statements / per, 2),
        "redis_sends_per_delivery": round(sends / per, 2),
    }


def _drain(worker: processes.Process, broker: Any, queues: list[str]) -> tuple[float, int]:
    """Run ``worker`` until the queues are empty; its CPU seconds and the deliveries it made."""
    import psutil

    from services.bus.models import Delivery

    before = Delivery.objects.count()
    with worker:
        time.sleep(2)
        while any(broker.llen(q) for q in queues) or broker.hlen("unacked"):
            time.sleep(0.2)
        times = psutil.Process(worker.pid).cpu_times()
    return times.user + times.system, Delivery.objects.count() - before


def main() -> int:
    from checkout_site.embedded_redis import EmbeddedRedis

    parser = argparse.ArgumentParser(prog="python -m bench.cpu_paths", description=__doc__)
    parser.add_argument("orders", nargs="?", type=int, default=300)
    parser.add_argument(
        "--into", type=Path, help="add the figures to this results file (bench/results.json)"
    )
    args = parser.parse_args()
    n = args.orders
    figures: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="checkout-cpu-"))
    redis = EmbeddedRedis().start()
    env = dict(
        os.environ,
        REDIS_URL=redis.url,
        DATABASE_URL=f"sqlite:///{work / 'cpu.sqlite3'}",
        DJANGO_SETTINGS_MODULE="checkout_site.settings",
        EMAIL_URL="memory:",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="cpu-paths-only-" + "x" * 50,
        DJANGO_SECURE_SSL_REDIRECT="false",
        ORDER_RATE_LIMIT="1000000000",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    # Its own embedded Redis is the broker, for this process and the worker alike.
    env.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.update(env)
    report = []
    try:
        processes.manage("migrate", "-v", "0", env=env)
        processes.manage("load_demo", env=env, quiet=True)
        import django

        django.setup()
        from django.test import Client

        from orders.models import Order
        from services.inventory.models import Stock

        Stock.objects.filter(product_id=456).update(on_hand=10**7, initial=10**7)
        client = Client(HTTP_HOST="localhost")
        for _ in range(20):
            _post(client)
        cpu = time.process_time()
        for _ in range(n):
            client.get("/healthz")
        noop_ms = (time.process_time() - cpu) * 1000 / n
        cpu = time.process_time()
        for _ in range(n):
            _post(client)
        post_ms = (time.process_time() - cpu) * 1000 / n
        figures.update(orders=n, post_cpu_ms=round(post_ms, 3), noop_cpu_ms=round(noop_ms, 3))
        report += [
            f"In one process, Django test client, no profiler: GET /healthz {noop_ms:.2f} ms CPU,",
            f"POST /orders {post_ms:.2f} ms CPU (view, transaction, 3 publishes, broadcast).",
        ]

        # A solo pool, so the deliveries run in the worker process itself: first as it is,
        # for its CPU per delivery, then under cProfile for where that goes.
        import redis as redis_client

        broker = redis_client.Redis.from_url(redis.url)
        queues = processes.service_queues()
        plain = _solo_worker(env, queues, work / "plain.log")
        plain_cpu, plain_deliveries = _drain(plain, broker, queues)
        shipped = Order.objects.filter(status="SHIPPED").count()
        figures.update(
            delivery_cpu_ms=round(plain_cpu * 1000 / max(plain_deliveries, 1), 3),
            order_cpu_ms=round(plain_cpu * 1000 / max(shipped, 1), 3),
            deliveries_per_order=round(plain_deliveries / max(shipped, 1), 2),
        )
        report += [
            f"Solo worker, no profiler: {plain_deliveries} deliveries for {shipped} shipped "
            f"orders, {plain_cpu * 1000 / max(plain_deliveries, 1):.2f} ms CPU per delivery, "
            f"{plain_cpu * 1000 / max(shipped, 1):.2f} ms per shipped order.",
            "",
        ]

        profile = cProfile.Profile()
        profile.enable()
        for _ in range(n):
            _post(client)
        profile.disable()
        profile.dump_stats(str(work / "post.prof"))
        worker = _solo_worker(env, queues, work / "worker.log", profile_to=work / "worker.prof")
        _drain(worker, broker, queues)
        own = worker_cpu = 0.0
        stats = pstats.Stats(str(work / "worker.prof"))
        deliveries = 0
        for (path, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
            if path.endswith("services/bus/tasks.py") and name == "deliver":
                deliveries, worker_cpu = nc, ct
            if path.endswith("services/bus/consumer.py") and name == "event_consume":
                own = ct
        shipped = Order.objects.filter(status="SHIPPED").count() - shipped
        figures["profiled"] = breakdown(str(work / "worker.prof"))
        report += [
            f"Solo worker under cProfile: {deliveries} deliveries for {shipped} shipped orders,",
            f"{worker_cpu * 1000 / max(deliveries, 1):.2f} ms per delivery in the task "
            f"({own * 1000 / max(deliveries, 1):.2f} ms in event_consume), cProfile included.",
            "",
            "=== POST /orders (cumulative) ===",
            _stats(str(work / "post.prof")),
            "=== worker (cumulative) ===",
            _stats(str(work / "worker.prof"), 70),
        ]
    finally:
        redis.stop()
    OUT.mkdir(exist_ok=True)
    out = OUT / "cpu-paths.txt"
    out.write_text("\n".join(report))
    if args.into is not None:
        results = json.loads(args.into.read_text())
        results["cpu_paths"] = figures
        args.into.write_text(json.dumps(results, indent=2) + "\n")
        print(f"added the figures to {args.into}")
    print("\n".join(report[:7]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
