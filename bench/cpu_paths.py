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

from checkout_site import processes
from checkout_site.processes import ROOT

OUT = ROOT / "bench" / "out"


def _stats(path: str, limit: int = 40) -> str:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.sort_stats("cumulative").print_stats(limit)
    text = out.getvalue().replace(str(ROOT) + "/", "")
    return text.replace(".venv/lib/python3.11/site-packages/", "~/")


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

        from bench.load import ARTICLE_ORDER
        from orders.models import Order
        from services.inventory.models import Stock

        Stock.objects.filter(product_id=456).update(on_hand=10**7, initial=10**7)
        client = Client()
        for _ in range(20):
            client.post("/orders", data=ARTICLE_ORDER, content_type="application/json")
        cpu = time.process_time()
        for _ in range(n):
            client.get("/healthz")
        noop_ms = (time.process_time() - cpu) * 1000 / n
        cpu = time.process_time()
        for _ in range(n):
            client.post("/orders", data=ARTICLE_ORDER, content_type="application/json")
        post_ms = (time.process_time() - cpu) * 1000 / n
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(n):
            client.post("/orders", data=ARTICLE_ORDER, content_type="application/json")
        profile.disable()
        profile.dump_stats(str(work / "post.prof"))
        report += [
            f"In one process, Django test client, no profiler: GET /healthz {noop_ms:.2f} ms CPU,",
            f"POST /orders {post_ms:.2f} ms CPU (view, transaction, 3 publishes, broadcast).",
            "",
        ]

        # A solo pool, so the deliveries run in the profiled process itself.
        queues = processes.service_queues()
        command = processes.worker_command(
            "cpu-paths",
            queues,
            options=["-P", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        )
        profiled = [command[0], "-m", "cProfile", "-o", str(work / "worker.prof"), *command[1:]]
        worker = processes.Process(
            "worker", profiled, env=env, log=work / "worker.log", stop_timeout=120
        )
        import redis as redis_client

        broker = redis_client.Redis.from_url(redis.url)
        with worker:
            time.sleep(2)
            while any(broker.llen(q) for q in queues) or broker.hlen("unacked"):
                time.sleep(0.2)
        own = worker_cpu = 0.0
        stats = pstats.Stats(str(work / "worker.prof"))
        deliveries = 0
        for (path, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
            if path.endswith("services/bus/tasks.py") and name == "deliver":
                deliveries, worker_cpu = nc, ct
            if path.endswith("services/bus/consumer.py") and name == "event_consume":
                own = ct
        shipped = Order.objects.filter(status="SHIPPED").count()
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
    print("\n".join(report[:6]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
