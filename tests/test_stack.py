"""``make run``'s launcher: it all starts on a bare machine; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from checkout_site.embedded_redis import free_port
from tests.conftest import ROOT, wait_for
from tests.helpers import ARTICLE_ORDER, alive, running_commands

pytestmark = pytest.mark.stack


def _get(url: str) -> dict:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_the_stack_serves_the_article_order_and_ctrl_c_stops_every_process(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        EMAIL_URL=f"file:///{tmp_path / 'mail'}",
    )
    launcher = subprocess.Popen(
        [sys.executable, "-m", "checkout_site.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        lines = []
        while time.monotonic() < deadline:
            line = launcher.stdout.readline()
            lines.append(line)
            if "is serving" in line or not line:
                break
        assert f"http://127.0.0.1:{port}/" in "".join(lines), "".join(lines)
        running = running_commands(psutil.Process(launcher.pid))
        names = " ".join(running.values())
        assert "redis-server" in names and "celery" in names and "daphne" in names

        body = json.dumps(ARTICLE_ORDER).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/orders",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
            order_id = json.loads(response.read())["orderId"]
        wait_for(
            lambda: _get(f"http://127.0.0.1:{port}/orders/{order_id}")["status"] == "SHIPPED",
            timeout=30,
            interval=0.2,
        )
    finally:
        launcher.send_signal(signal.SIGINT)
        launcher.wait(timeout=30)

    assert launcher.returncode == 0
    assert not [c for c in running if alive(c)]
