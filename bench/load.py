"""Load against a running deployment: orders in, events out, all timed on the client side.

One ``LoadRun`` places orders (open loop at a fixed rate, or closed loop with a fixed number in
flight), may follow each order on ``/ws/orders/<id>/`` until it is SHIPPED or CANCELLED, and may
hold any number of ``/ws/events/`` sockets that must each receive every event. ``python -m
bench.loadtest`` and ``python -m bench`` both drive it.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.client import ConnectionPool, Target, WebSocket

TERMINAL = ("SHIPPED", "CANCELLED")
ARTICLE_ORDER = {"userId": 123, "productId": 456, "quantity": 1, "paymentToken": "tok_bench"}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float | None]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "n": len(values),
        "p50": r(percentile(values, 50)),
        "p90": r(percentile(values, 90)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values) if values else None),
    }


def _seq_of(message: bytes) -> int:
    """The first ``"seq"`` in a message, without decoding all of it (1,000 sockets add up)."""
    at = message.find(b'"seq":')
    if at < 0:
        return -1
    at += 6
    while message[at] == 0x20:
        at += 1
    end = at
    while 0x30 <= message[end] <= 0x39:
        end += 1
    return int(message[at:end])


class FeedSockets:
    """``n`` clients of ``/ws/events/``. Socket 0 decodes every message; the rest note seqs."""

    def __init__(self, target: Target, n: int) -> None:
        self.target = target
        self.n = n
        self.sockets: list[WebSocket] = []
        self.start_seq: list[int] = [0] * n
        self.seqs = [array("q") for _ in range(n)]
        self.times = [array("d") for _ in range(n)]
        # From socket 0: seq -> (type, orderId, eventId, causationId, status), and listeners.
        self.events: dict[int, tuple[str, int, str, str | None, str]] = {}
        self.listeners: list[Callable[[dict[str, Any], float], None]] = []

    async def open(self, batch: int = 50) -> None:
        for first in range(0, self.n, batch):
            await asyncio.gather(
                *(self._open_one(i) for i in range(first, min(first + batch, self.n)))
            )

    async def _open_one(self, i: int) -> None:
        seqs, times = self.seqs[i], self.times[i]

        if i == 0:

            def on_message(data: bytes, now: float) -> None:
                message = json.loads(data)
                if message.get("kind") == "hello":
                    self.start_seq[0] = message["lastSeq"]
                    return
                event = message["event"]
                seqs.append(event["seq"])
                times.append(now)
                self.events[event["seq"]] = (
                    event["type"],
                    event["orderId"],
                    event["eventId"],
                    event["causationId"],
                    message["status"],
                )
                for listener in self.listeners:
                    listener(message, now)

        else:

            def on_message(data: bytes, now: float) -> None:
                if b'"hello"' in data[:40]:
                    self.start_seq[i] = json.loads(data)["lastSeq"]
                    return
                seqs.append(_seq_of(data))
                times.append(now)

        self.sockets.append(await WebSocket.connect(self.target, "/ws/events/", on_message))

    def expected(self) -> set[int]:
        """Every seq any socket saw after the highest seq any socket was greeted with."""
        floor = max(self.start_seq) if self.start_seq else 0
        seen: set[int] = set()
        for seqs in self.seqs:
            seen.update(seqs)
        if not seen:
            return set()
        return set(range(floor + 1, max(seen) + 1))

    def complete(self) -> bool:
        expected = self.expected()
        return all(expected <= set(seqs) for seqs in self.seqs)

    def delivered_fraction(self) -> float:
        expected = self.expected()
        if not expected:
            return 1.0
        got = sum(len(expected & set(seqs)) for seqs in self.seqs)
        return got / (len(expected) * self.n)

    def in_order(self) -> bool:
        return all(list(seqs) == sorted(set(seqs)) for seqs in self.seqs)

    def close(self) -> None:
        for ws in self.sockets:
            ws.close()


@dataclass
class Stats:
    posted: int = 0
    accepted: int = 0
    errors: int = 0
    shipped: int = 0
    cancelled: int = 0
    timeouts: int = 0
    post_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)
    # orderId -> monotonic time the POST was sent; orderId -> time it reached a terminal status
    sent_at: dict[int, float] = field(default_factory=dict)
    done_at: dict[int, float] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)


class Progress:
    """One status line: a bar, counts, live throughput and percentiles."""

    def __init__(self, label: str, duration: float, stats: Stats, stream: Any = None) -> None:
        self.label = label
        self.duration = duration
        self.stats = stats
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self._last_line = 0.0

    def line(self) -> str:
        s = self.stats
        elapsed = time.monotonic() - self.started
        done = min(elapsed / self.duration, 1.0) if self.duration else 1.0
        bar = "#" * int(done * 20) + "." * (20 - int(done * 20))
        rate = s.accepted / elapsed if elapsed else 0.0
        recent = [t for t in s.done_at.values() if t >= time.monotonic() - 5]
        post, e2e = s.post_ms[-2000:], s.e2e_ms[-2000:]

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}"

        return (
            f"{self.label} [{bar}] {elapsed:5.1f}/{self.duration:.0f}s "
            f"posted {s.accepted} ({rate:.1f}/s) done {s.shipped + s.cancelled} "
            f"({len(recent) / 5:.1f}/s) err {s.errors + s.timeouts} | "
            f"POST p50 {ms(percentile(post, 50))} p99 {ms(percentile(post, 99))} ms | "
            f"e2e p50 {ms(percentile(e2e, 50))} p99 {ms(percentile(e2e, 99))} ms"
        )

    def tick(self) -> None:
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line()[:200] + "\033[K")
            self.stream.flush()
        elif now - self._last_line >= 5:
            self._last_line = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def finish(self) -> None:
        self.stream.write(("\r" if self.tty else "") + self.line()[:200] + "\n")
        self.stream.flush()


class LoadRun:
    """Place orders against ``target`` and time them.

    ``rate`` > 0: open loop, one order every 1/rate s whatever the answers. ``concurrency`` > 0:
    closed loop, that many orders in flight, each replaced when it reaches a terminal status.
    ``follow``: each order is followed on its own ``/ws/orders/<id>/`` socket; otherwise the
    first feed socket sees the terminal events (closed loop needs ``feed`` >= 1 or ``follow``).
    An open loop with neither only times the POSTs: no socket of any kind is open.
    """

    def __init__(
        self,
        target: Target,
        *,
        rate: float = 0.0,
        concurrency: int = 0,
        duration: float = 10.0,
        follow: bool = True,
        feed: FeedSockets | None = None,
        body: dict[str, Any] | None = None,
        label: str = "orders",
        settle: float = 30.0,
        progress: bool = True,
    ) -> None:
        if (rate > 0) == (concurrency > 0):
            raise ValueError("give a rate (open loop) or a concurrency (closed loop)")
        if concurrency and not follow and feed is None:
            raise ValueError("a closed loop must see terminal events: follow or open a feed")
        self.target = target
        self.rate = rate
        self.concurrency = concurrency
        self.duration = duration
        self.follow = follow
        self.feed = feed
        self.body = body or ARTICLE_ORDER
        self.settle = settle
        self.stats = Stats()
        self.progress = Progress(label, duration, self.stats) if progress else None
        self.pool = ConnectionPool(target)
        self._waiters: dict[int, asyncio.Future[float]] = {}
        self._terminal_early: dict[int, float] = {}
        self.started = 0.0

    def _on_feed_event(self, message: dict[str, Any], now: float) -> None:
        if message["status"] in TERMINAL and message["event"]["type"] in (
            "OrderShipped",
            "OrderCancelled",
        ):
            order_id = message["event"]["orderId"]
            waiter = self._waiters.pop(order_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(now)
            else:
                self._terminal_early[order_id] = now

    async def run(self) -> Stats:
        if self.feed is not None and not self.follow:
            self.feed.listeners.append(self._on_feed_event)
        self.started = time.monotonic()
        ticker = asyncio.create_task(self._tick())
        try:
            if self.rate:
                await self._open_loop()
            else:
                await self._closed_loop()
        finally:
            if self.feed is not None and self._on_feed_event in self.feed.listeners:
                self.feed.listeners.remove(self._on_feed_event)
            ticker.cancel()
            self.pool.close()
            if self.progress:
                self.progress.finish()
        return self.stats

    async def _tick(self) -> None:
        while self.progress:
            self.progress.tick()
            await asyncio.sleep(0.25)

    async def _open_loop(self) -> None:
        total = int(self.rate * self.duration)
        tasks = []
        for i in range(total):
            delay = self.started + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self._one_order()))
        await asyncio.gather(*tasks)

    async def _closed_loop(self) -> None:
        deadline = self.started + self.duration

        async def lane() -> None:
            while time.monotonic() < deadline:
                await self._one_order()

        await asyncio.gather(*(lane() for _ in range(self.concurrency)))

    async def _one_order(self) -> None:
        s = self.stats
        sent = time.monotonic()
        s.posted += 1
        try:
            status, data = await self.pool.post_json("/orders", self.body)
        except OSError as exc:
            s.errors += 1
            self._sample(f"POST failed: {exc!r}")
            await asyncio.sleep(0.05)
            return
        s.post_ms.append((time.monotonic() - sent) * 1000)
        if status != 202:
            s.errors += 1
            self._sample(f"POST answered {status}: {data[:200]!r}")
            return
        s.accepted += 1
        order_id = json.loads(data)["orderId"]
        s.sent_at[order_id] = sent
        if not self.follow and self.feed is None:
            return
        try:
            done, status_name = await asyncio.wait_for(self._terminal(order_id), self.settle)
        except TimeoutError:
            s.timeouts += 1
            self._sample(f"order {order_id} not terminal within {self.settle} s")
            return
        except OSError as exc:
            s.errors += 1
            self._sample(f"socket of order {order_id} failed: {exc!r}")
            return
        s.done_at[order_id] = done
        s.e2e_ms.append((done - sent) * 1000)
        if status_name == "SHIPPED":
            s.shipped += 1
        else:
            s.cancelled += 1

    async def _terminal(self, order_id: int) -> tuple[float, str]:
        if not self.follow:
            if order_id in self._terminal_early:
                return self._terminal_early.pop(order_id), "SHIPPED"
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[order_id] = waiter
            try:
                return await waiter, "SHIPPED"
            finally:
                self._waiters.pop(order_id, None)
        result: asyncio.Future[tuple[float, str]] = asyncio.get_running_loop().create_future()

        def on_message(data: bytes, now: float) -> None:
            message = json.loads(data)
            if message.get("status") in TERMINAL and not result.done():
                result.set_result((now, message["status"]))

        ws = await WebSocket.connect(self.target, f"/ws/orders/{order_id}/", on_message)
        try:
            return await result
        finally:
            ws.close()

    def _sample(self, text: str) -> None:
        if len(self.stats.error_samples) < 10:
            self.stats.error_samples.append(text)

    def completed_per_s(self, *, skip: float = 0.0) -> float:
        """Orders that reached a terminal status per second, after the first ``skip`` seconds."""
        start = self.started + skip
        end = self.started + self.duration
        n = sum(1 for t in self.stats.done_at.values() if start <= t <= end)
        return n / max(end - start, 1e-9)


async def http_rate(
    target: Target,
    *,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    concurrency: int = 8,
    duration: float = 5.0,
) -> dict[str, Any]:
    """Closed loop: ``concurrency`` keep-alive connections send requests back to back."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    pool = ConnectionPool(target)
    deadline = time.monotonic() + duration
    payload = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    async def lane() -> None:
        while time.monotonic() < deadline:
            t = time.monotonic()
            status, _ = await pool.request(method, path, body=payload, headers=headers)
            latencies.append((time.monotonic() - t) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    pool.close()
    return {
        "per_s": round(len(latencies) / elapsed, 1),
        "statuses": statuses,
        "latency_ms": summary(latencies),
    }


async def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()
