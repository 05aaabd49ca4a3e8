"""``python -m bench.cpu_paths``: where the CPU of one order goes, by cProfile, without the noise.

py-spy (bench/profile.py) watches the real stack under load, but on shared cores its samples
mix work with waiting. This runs the two paths of an order in single processes instead: N
``POST /orders`` through Django's test client (the view, the transaction, the outbox flush),
then a solo Celery worker under cProfile that drains every delivery those orders cause. It
writes the CPU per request and per delivery, and the functions that take it, to
bench/out/cpu-paths.txt (not committed).
"""

from __future__ import annotations

import cProfile
import io
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

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
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
    env.pop("CELERY_BROKER_URL", None)
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
    print("\n".join(report[:7]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
