"""The processes under test: what ``make run`` starts, plus a bare Celery worker beside it.

Everything runs on 127.0.0.1 with a fresh SQLite file in a temporary folder, so a benchmark never
touches the developer's database. The checkout's processes come from
``checkout_site.processes.checkout``, so the benchmark measures what ``make run`` runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from checkout_site import processes
from checkout_site.embedded_redis import EmbeddedRedis, free_port
from checkout_site.processes import ROOT

BENCH_STOCK = 10_000_000


class Stack:
    def __init__(self, *, debug: bool = False, extra_env: dict[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="checkout-bench-"))
        self.redis = EmbeddedRedis()
        self.port = free_port()
        self.children: dict[str, processes.Process] = {}
        self.group = processes.ProcessGroup([])
        self.debug = debug
        self.extra_env = extra_env or {}
        self.env: dict[str, str] = {}
        self.rss_peak_mb = 0.0
        self._sampling = False
        self._sampler: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bare_broker(self) -> str:
        return f"redis://127.0.0.1:{self.redis.port}/1"

    def start(self) -> Stack:
        self.redis.start()
        env = dict(os.environ)
        env.update(
            REDIS_URL=self.redis.url,
            # BENCH_DATABASE_URL puts the checkout on another database (an empty PostgreSQL one).
            DATABASE_URL=os.environ.get("BENCH_DATABASE_URL")
            or f"sqlite:///{self.dir / 'bench.sqlite3'}",
            EMAIL_URL="memory:",
            PYTHONPATH=str(ROOT),
            DJANGO_DEBUG="true" if self.debug else "false",
            DJANGO_SECRET_KEY="bench-only-secret-key-0123456789-0123456789-0123456789",
            DJANGO_SECURE_SSL_REDIRECT="false",
            # The load comes from one address, far above what one shopper may send.
            ORDER_RATE_LIMIT="1000000000",
            LOG_LEVEL="WARNING",
            BENCH_BARE_BROKER=self.bare_broker,
            # POST /orders is measured against this floor (bench/minimal_write.py).
            BENCH_MINIMAL_WRITE="true",
        )
        env.pop("CELERY_BROKER_URL", None)
        env.update(self.extra_env)
        self.env = env
        # This process publishes to the bare worker too.
        os.environ["BENCH_BARE_BROKER"] = self.bare_broker
        processes.manage("migrate", "--noinput", "-v", "0", env=env)
        processes.manage("load_demo", env=env, quiet=True)
        self.django_ready()
        _stock_fill()
        checkout = processes.checkout(env=env, port=self.port, log_dir=self.dir, wait_worker=True)
        # The bare worker runs as the checkout's do (WORKER_POOL, WORKER_CONCURRENCY).
        bare = processes.checkout_workers(
            env=env, name="bare", app="bench.bare", queues=["bare"], log_dir=self.dir, log_as="bare"
        )
        # Keyed "worker", "worker-2"..., "relay", "daphne", "bare", "bare-2"...
        self.children = {p.name.replace("checkout", "worker", 1): p for p in [*checkout, *bare]}
        self.group = processes.ProcessGroup(list(self.children.values()))
        self.group.start().wait()
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample_rss, daemon=True)
        self._sampler.start()
        return self

    def log_tail(self, name: str, chars: int = 3000) -> str:
        return self.children[name].tail(chars)

    def processes(self, *, bare: bool = False) -> list[psutil.Process]:
        """The checkout's processes (Redis, worker and its pool, relay, daphne)."""
        found = []
        pids = [self.redis.process.pid] if self.redis.process else []
        pids += [c.pid for n, c in self.children.items() if n.startswith("bare") == bare]
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                found.append(proc)
                found.extend(proc.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        return found

    def pids(self, name: str) -> list[int]:
        """The processes of ``name`` (all its workers, for "worker" or "bare"), pools included."""
        found = []
        for key, child in self.children.items():
            if key.split("-")[0] == name:
                proc = psutil.Process(child.pid)
                found += [proc.pid, *(c.pid for c in proc.children(recursive=True))]
        return found

    def rss_mb(self) -> float:
        total = 0
        for proc in self.processes():
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 2**20

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each part of the checkout (worker includes every worker and
        pool process)."""
        parts = {"redis": self._cpu([self.redis.process.pid] if self.redis.process else [])}
        for name in ("worker", "relay", "daphne"):
            parts[name] = self._cpu(self.pids(name))
        return parts

    def bare_cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by the bare Celery worker (with its pool) and by Redis."""
        redis = [self.redis.process.pid] if self.redis.process else []
        return {"bare_worker": self._cpu(self.pids("bare")), "redis": self._cpu(redis)}

    @staticmethod
    def _cpu(pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            try:
                total += sum(psutil.Process(pid).cpu_times()[:2])
            except psutil.NoSuchProcess:
                continue
        return total

    def _sample_rss(self) -> None:
        while self._sampling:
            self.rss_peak_mb = max(self.rss_peak_mb, self.rss_mb())
            time.sleep(0.25)

    def pause_worker(self) -> None:
        for pid in self.pids("worker"):
            os.kill(pid, signal.SIGSTOP)

    def resume_worker(self) -> None:
        for pid in self.pids("worker"):
            os.kill(pid, signal.SIGCONT)

    def django_ready(self) -> None:
        """Point this process's Django at the stack's database and broker, then set it up."""
        for key in ("REDIS_URL", "DATABASE_URL", "EMAIL_URL", "DJANGO_DEBUG", "DJANGO_SECRET_KEY"):
            os.environ[key] = self.env[key]
        os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "false"
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")
        import django

        django.setup()

    def stop(self) -> None:
        self._sampling = False
        self.group.stop()
        self.redis.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _stock_fill() -> None:
    """Enough stock that no order of a benchmark is cancelled for want of it."""
    from orders.models import Product
    from services.inventory.models import Stock

    Stock.objects.filter(product_id=456).update(on_hand=BENCH_STOCK, initial=BENCH_STOCK)
    Product.objects.filter(pk=456).update(stock=BENCH_STOCK)
