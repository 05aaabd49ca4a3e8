"""Soak: many orders through the real stack while it is being broken, then the books checked.

    python -m bench.soak [--orders 1000] [--workers 2] [--kill-every 3]

Starts its own stack on a fresh SQLite file: an embedded Redis (or REDIS_URL's), Celery
workers, the relay with its reconciler. A placer process places the orders at a steady pace
and publishes a share of every order's events again (duplicate delivery). Meanwhile workers
are killed with -9 at random (a pool process, or a whole worker that is then started again),
and Redis is restarted once with its data gone. When every order is terminal, check_consistency
runs, and the figures are printed (and written as JSON with --report).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from checkout_site import processes
from checkout_site.processes import ROOT

BULK, SCARCE = 456, 457


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description="Place many orders while workers are killed and Redis restarts; check books.",
    )
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0, help="mean seconds")
    parser.add_argument("--duplicates", type=float, default=0.3, help="share re-published")
    parser.add_argument("--no-redis-restart", action="store_true")
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--role", choices=["run", "place"], default="run", help="internal")
    options = vars(parser.parse_args(argv))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")
    import django

    django.setup()
    if options.pop("role") == "place":
        _place(options)
        return 0
    figures = _Soak(options).run()
    text = json.dumps(figures, indent=2)
    print(text)
    if options["report"]:
        options["report"].write_text(text + "\n")
    if figures["violations"]:
        print(f"{figures['violations']} invariant violations after the soak", file=sys.stderr)
        return 1
    return 0


class _Soak:
    def __init__(self, options: dict[str, Any]) -> None:
        self.o = options
        self.rng = random.Random(options["seed"])
        self.dir = Path(tempfile.mkdtemp(prefix="soak-"))
        self.kills = {"pool process": 0, "whole worker": 0}
        self.redis: Any = None
        self.workers: list[processes.Process] = []
        self.procs: list[processes.Process] = []

    def say(self, text: str) -> None:
        print(f"[soak {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def run(self) -> dict[str, Any]:
        from checkout_site.embedded_redis import EmbeddedRedis

        redis_url = os.environ.get("SOAK_REDIS_URL")
        if not redis_url:
            self.redis = EmbeddedRedis().start()
            redis_url = self.redis.url
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.dir / 'soak.sqlite3'}",
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": redis_url,
            "EMAIL_URL": "dummy:",
            "CELERY_VISIBILITY_TIMEOUT": "10",
            "RECONCILE_AFTER_SECONDS": "20",
            "RECONCILE_INTERVAL_SECONDS": "3",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        }
        # SIGTERM must stop the stack this command started, as Ctrl-C does.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return self._run()
        finally:
            processes.ProcessGroup(self.procs + self.workers).stop()
            if self.redis is not None:
                self.redis.stop()

    def _run(self) -> dict[str, Any]:
        processes.manage("migrate", "-v", "0", env=self.env)
        for n in range(self.o["workers"]):
            self.workers.append(self._worker(n))
        relay = processes.relay(env=self.env, interval=0.3, log=self.dir / "relay.log")
        self.procs.append(relay.start())
        placer = processes.Process(
            "placer",
            [
                sys.executable,
                "-m",
                "bench.soak",
                "--role",
                "place",
                "--orders",
                str(self.o["orders"]),
                "--rate",
                str(self.o["rate"]),
                "--duplicates",
                str(self.o["duplicates"]),
                "--seed",
                str(self.o["seed"]),
                "--drain-timeout",
                str(self.o["drain_timeout"]),
            ],
            env=self.env,
            log=self.dir / "placer.log",
        )
        self.procs.append(placer.start(stdout=subprocess.PIPE))
        self.say(f"stack up in {self.dir}; placing {self.o['orders']} orders")
        restarted = self.o["no_redis_restart"] or self.redis is None
        redis_restarts = 0
        result: dict[str, Any] = {}
        next_kill = time.monotonic() + self.rng.expovariate(1 / self.o["kill_every"])
        assert placer.popen is not None and placer.popen.stdout is not None
        stdout = placer.popen.stdout
        os.set_blocking(stdout.fileno(), False)
        buffer = b""
        while placer.running or buffer or not result:
            chunk = stdout.read() or b""
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                result.update(message)
                placed = message.get("placed", 0)
                if not restarted and placed >= 0.4 * self.o["orders"]:
                    self.say(f"restarting Redis with its data gone at {placed} orders")
                    self.redis.stop()
                    time.sleep(1.0)
                    self.redis.start()
                    restarted, redis_restarts = True, 1
            if "drained_s" in result or (not placer.running and not chunk):
                break
            if "placing_done" not in result and time.monotonic() >= next_kill:
                self._kill()
                next_kill = time.monotonic() + self.rng.expovariate(1 / self.o["kill_every"])
            for n, worker in enumerate(self.workers):
                if not worker.running:
                    self.workers[n] = self._worker(n)
            time.sleep(0.1)
        placer.popen.wait()
        check = subprocess.run(
            processes.manage_command("check_consistency", "--deadline", "0"),
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        self.say(check.stdout.strip().splitlines()[-1] if check.stdout else check.stderr)
        logs = "".join(p.read_text(errors="replace") for p in self.dir.glob("*.log"))
        violations = 0 if check.returncode == 0 else max(1, check.stdout.count("\n") - 1)
        return {
            "orders": self.o["orders"],
            "shipped": result.get("shipped"),
            "cancelled": result.get("cancelled"),
            "workers": self.o["workers"],
            "kills": dict(self.kills),
            "tasks lost mid-handling (WorkerLostError)": logs.count("WorkerLostError"),
            "redis restarts": redis_restarts,
            "events re-published (duplicates sent)": result.get("republished"),
            "duplicates seen by consumers": logs.count(": 'duplicate'"),
            "events re-sent by the reconciler": _reconciled(logs),
            "placing took s": result.get("placing_s"),
            "time to drain s": result.get("drained_s"),
            "violations": violations,
            "check_consistency": check.stdout.strip().splitlines()[-1:] or [check.stderr],
        }

    def _worker(self, n: int) -> processes.Process:
        log = self.dir / f"worker{n}-{time.monotonic_ns()}.log"
        options = ["--without-gossip", "--without-mingle"]
        worker = processes.worker(
            f"soak{n}", env=self.env, loglevel="info", options=options, log=log, ready=False
        )
        return worker.start()

    def _kill(self) -> None:
        n = self.rng.randrange(len(self.workers))
        worker = self.workers[n]
        pool = _children(worker.pid)
        if pool and self.rng.random() < 0.7:
            os.kill(self.rng.choice(pool), signal.SIGKILL)
            self.kills["pool process"] += 1
            return
        os.kill(worker.pid, signal.SIGKILL)
        for pid in pool:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert worker.popen is not None
        worker.popen.wait()
        self.kills["whole worker"] += 1
        self.workers[n] = self._worker(n)


def _place(options: dict[str, Any]) -> None:
    """The placer: a steady stream of orders, some events sent again, then wait for the end."""
    from orders.contract import OrderRequest
    from orders.models import TERMINAL_STATUSES, Customer, Order, Product
    from orders.placement import order_place
    from services.bus.models import Event
    from services.bus.outbox import outbox_flush
    from services.bus.reconciler import events_unhandled
    from services.inventory.models import Stock

    def emit(**message: Any) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    rng = random.Random(options["seed"] + 1)
    Customer.objects.get_or_create(pk=123, defaults={"name": "Soak", "email": "soak@example.com"})
    for pk, stock in ((BULK, 1_000_000), (SCARCE, 60)):
        Product.objects.get_or_create(
            pk=pk, defaults={"name": f"P{pk}", "price": Decimal("9.50"), "stock": stock}
        )
        Stock.objects.get_or_create(product_id=pk, defaults={"on_hand": stock, "initial": stock})
    started = time.monotonic()
    order_ids: list[int] = []
    republished = 0
    for i in range(options["orders"]):
        due = started + i / options["rate"]
        time.sleep(max(0.0, due - time.monotonic()))
        token = "tok_declined" if rng.random() < 0.1 else f"tok_soak{i}"
        product = SCARCE if rng.random() < 0.15 else BULK
        request = OrderRequest(
            userId=123, productId=product, quantity=rng.randint(1, 3), paymentToken=token
        )
        order_ids.append(order_place(request=request)[0].pk)
        if i % 10 == 9:
            # Re-publish a share of what the last orders emitted so far: duplicate delivery.
            recent = list(Event.objects.filter(order_id__in=order_ids[-30:]))
            again = [e for e in recent if rng.random() < options["duplicates"]]
            republished += len(outbox_flush(again))
            emit(placed=i + 1)
    placing_s = round(time.monotonic() - started, 1)
    emit(placed=len(order_ids), placing_done=True, placing_s=placing_s)
    drain_started = time.monotonic()
    deadline = drain_started + options["drain_timeout"]
    wanted = set(order_ids)
    while time.monotonic() < deadline:
        done = Order.objects.filter(pk__in=order_ids, status__in=TERMINAL_STATUSES).count()
        # A terminal order may still have a delivery owed (one a Redis restart wiped, which the
        # reconciler sends again once it is overdue): drained means that one is settled too.
        owed = any(e.order_id in wanted for _, e in events_unhandled(after_s=0))
        if done == len(order_ids) and not owed:
            break
        time.sleep(1.0)
    statuses = _count_statuses(order_ids)
    emit(
        drained_s=round(time.monotonic() - drain_started, 1),
        shipped=statuses.get("SHIPPED", 0),
        cancelled=statuses.get("CANCELLED", 0),
        republished=republished,
    )


def _count_statuses(order_ids: list[int]) -> dict[str, int]:
    from django.db.models import Count

    from orders.models import Order

    rows = Order.objects.filter(pk__in=order_ids).values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _reconciled(logs: str) -> int:
    total = 0
    for line in logs.splitlines():
        if "reconciler sent" in line:
            total += int(line.split("reconciler sent", 1)[1].split()[0])
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


if __name__ == "__main__":
    sys.exit(main())
