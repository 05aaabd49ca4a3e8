"""``make run-cluster`` on the machine's engines, driven through the balancer only.

CI runs it (``-m cluster``) with CLUSTER_DATABASE_URL (PostgreSQL, a database of its own),
CLUSTER_REDIS_URL (a database number of its own) and CLUSTER_BROKER_URL (a RabbitMQ vhost of its
own). Feed sockets stay open while 40 orders go in; one daphne is killed -9 and the payment
service is stopped and started from the console's control endpoint. Every order must finish and
every socket must get every event once, in ``seq`` order, reconnecting with ``?after=`` when its
daphne dies. Then the broker is cut (/readyz 503, then 200), and Ctrl-C must leave nothing.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest

from bench.client import Target, WebSocket
from checkout_site.embedded_redis import free_port
from tests.conftest import ROOT, wait_for
from tests.helpers import ARTICLE_ORDER, alive, running_commands
from tests.netproxy import TcpProxy

pytestmark = pytest.mark.cluster

ORDERS = 40
SOCKETS = 8
PASSWORD = "cluster-check-password"
TERMINAL = {"SHIPPED", "CANCELLED"}


def _engines() -> dict[str, str]:
    names = ("CLUSTER_DATABASE_URL", "CLUSTER_REDIS_URL", "CLUSTER_BROKER_URL")
    missing = [name for name in names if not os.environ.get(name)]
    assert not missing, f"the cluster check needs {', '.join(missing)} (see .ci/run)"
    return {name: os.environ[name] for name in names}


def _through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(
        parts._replace(netloc=f"{credentials[0]}@{host}" if len(credentials) == 2 else host)
    )


class Site:
    """HTTP through the balancer, with a staff session for the control endpoints."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as answer:
            return answer.code, _json_or_text(answer.read())
        except OSError as unreachable:  # not listening yet, or the balancer cut it
            return 0, str(unreachable)

    def place(self, key: str) -> tuple[int, Any]:
        """POST /orders as a careful client does: a request cut off by a dying web process
        (502 from the balancer) is sent again with the same Idempotency-Key."""
        for _ in range(5):
            status, body = self.call("POST", "/orders", ARTICLE_ORDER, Idempotency_Key=key)
            if status not in (0, 502, 503):
                return status, body
            time.sleep(0.3)
        return status, body

    def sign_in(self) -> None:
        self.call("GET", "/admin/login/")
        form = f"username=admin&password={PASSWORD}&next=/admin/&csrfmiddlewaretoken={self.csrf()}"
        request = urllib.request.Request(
            self.base + "/admin/login/", data=form.encode(), method="POST"
        )
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        with self.opener.open(request, timeout=10):
            pass
        assert any(c.name == "sessionid" for c in self.cookies), "staff sign-in failed"

    def csrf(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken")

    def control(self, path: str) -> int:
        status, _ = self.call("POST", path, X_CSRFToken=self.csrf())
        return status


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


@dataclass
class Feed:
    """A /ws/events/ socket that reconnects with ?after=<last seq> when its daphne dies."""

    target: Target
    seqs: list[int] = field(default_factory=list)
    reconnects: int = 0
    _socket: WebSocket | None = None

    def _on_message(self, data: bytes, _at: float) -> None:
        message = json.loads(data)
        if message.get("kind") == "event":
            self.seqs.append(message["event"]["seq"])

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            path = f"/ws/events/?after={self.seqs[-1]}" if self.seqs else "/ws/events/"
            try:
                self._socket = await WebSocket.connect(self.target, path, self._on_message)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            closed = self._socket.closed
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([closed, stopped], return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if stop.is_set():
                self._socket.close()
                return
            self.reconnects += 1


def _daphnes(launcher: psutil.Process) -> list[psutil.Process]:
    return [p for p, command in running_commands(launcher).items() if "daphne" in command]


async def _drive(site: Site, port: int, launcher: psutil.Process) -> dict[str, Any]:
    feeds = [Feed(Target.parse(site.base)) for _ in range(SOCKETS)]
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(feed.run(stop)) for feed in feeds]
    await asyncio.sleep(1.0)
    order_ids: list[int] = []
    run = uuid.uuid4().hex
    killed = False
    stopped_at = started_at = 0.0
    for n in range(ORDERS):
        status, body = await asyncio.to_thread(site.place, f"{run}-{n}")
        assert status == 202, body
        order_ids.append(body["orderId"])
        if n == 10:
            victim = _daphnes(launcher)[0]
            victim.send_signal(signal.SIGKILL)
            killed = True
        if n == 20:
            assert await asyncio.to_thread(site.control, "/control/services/payment/stop") == 200
            stopped_at = time.monotonic()
        if n == 30:
            await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - stopped_at)))
            assert await asyncio.to_thread(site.control, "/control/services/payment/start") == 200
            started_at = time.monotonic()
        await asyncio.sleep(0.05)

    def finished() -> dict[int, list[int]] | None:
        seqs: dict[int, list[int]] = {}
        for order_id in order_ids:
            status, body = site.call("GET", f"/orders/{order_id}")
            if status != 200 or body["status"] not in TERMINAL:
                return None
            seqs[order_id] = [e["seq"] for e in body["events"]]
        return seqs

    by_order = await asyncio.to_thread(wait_for, finished, 120.0, 0.5)
    drained_s = time.monotonic() - started_at
    every = sorted(seq for seqs in by_order.values() for seq in seqs)
    await asyncio.to_thread(wait_for, lambda: all(f.seqs[-1:] == every[-1:] for f in feeds), 30.0)
    stop.set()
    await asyncio.gather(*tasks)
    return {
        "orders": order_ids,
        "every": every,
        "feeds": feeds,
        "killed": killed,
        "drained_s": drained_s,
    }


def test_the_cluster_loses_nothing_through_a_killed_daphne_and_a_stopped_service(tmp_path):
    engines = _engines()
    broker = urlsplit(engines["CLUSTER_BROKER_URL"])
    proxy = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672).start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_TEST", "CLUSTER_"))}
    env.update(
        DATABASE_URL=engines["CLUSTER_DATABASE_URL"],
        REDIS_URL=engines["CLUSTER_REDIS_URL"],
        CELERY_BROKER_URL=_through(proxy, engines["CLUSTER_BROKER_URL"]),
        PORT=str(port),
        WEB_PROCESSES="2",
        WORKERS_PER_QUEUE="1",
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        ORDER_RATE_LIMIT="100000",
        EMAIL_URL="memory:",
        LOG_LEVEL="WARNING",
    )
    log = (tmp_path / "cluster.log").open("wb")
    started = time.monotonic()
    popen = subprocess.Popen(
        [sys.executable, "-m", "checkout_site.cluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    launcher = psutil.Process(popen.pid)
    site = Site(port)
    descendants: set[psutil.Process] = set()
    try:
        wait_for(lambda: site.call("GET", "/readyz")[0] == 200, timeout=120, interval=0.5)
        ready_s = time.monotonic() - started
        descendants.update(launcher.children(recursive=True))
        assert len(_daphnes(launcher)) == 2
        site.sign_in()
        seen = asyncio.run(_drive(site, port, launcher))
        descendants.update(launcher.children(recursive=True))

        proxy.stop()
        try:
            status, body = site.call("GET", "/readyz")
        finally:
            proxy.start()
        assert status == 503 and "broker" in body["down"], body
        wait_for(lambda: site.call("GET", "/readyz")[0] == 200, timeout=30, interval=0.5)
    finally:
        popen.send_signal(signal.SIGINT)
        try:
            popen.wait(timeout=60)
        finally:
            log.close()
            proxy.stop()
    threading.Event().wait(0.5)
    left = [p for p in descendants if alive(p)]

    every = seen["every"]
    assert len(seen["orders"]) == ORDERS and len(every) >= ORDERS * 6
    for feed in seen["feeds"]:
        assert feed.seqs == every, "a socket missed, repeated or reordered an event"
    assert seen["killed"] and sum(feed.reconnects for feed in seen["feeds"]) >= 1
    assert not left, f"left running after Ctrl-C: {[p.cmdline() for p in left]}"
    print(
        f"\ncluster: up in {ready_s:.1f} s; {ORDERS} orders, {len(every)} events, "
        f"{SOCKETS} sockets, {sum(f.reconnects for f in seen['feeds'])} reconnects after the "
        f"kill; drained {seen['drained_s']:.1f} s after payment started again"
    )
