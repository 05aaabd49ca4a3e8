"""Serve a throwaway Checkout Live and run tests/ci/schemathesis.sh against it.

    .venv/bin/python tests/ci/schemathesis_serve.py [MAX_EXAMPLES]

A fresh SQLite file with the demo catalog, an embedded Redis unless REDIS_URL is set, a Celery
worker (so accepted orders really run) and daphne on a free port. Everything it starts is
stopped at the end; the exit code is schemathesis's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from checkout_site import processes  # noqa: E402
from checkout_site.embedded_redis import EmbeddedRedis, free_port  # noqa: E402


def main() -> int:
    max_examples = sys.argv[1] if len(sys.argv) > 1 else "150"
    workdir = Path(tempfile.mkdtemp(prefix="schemathesis-"))
    redis = None
    # Schemathesis places orders by the hundred from one address.
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        EMAIL_URL="dummy:",
        ORDER_RATE_LIMIT="1000000000",
    )
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis().start()
        env["REDIS_URL"] = redis.url
    env.pop("CELERY_BROKER_URL", None)
    port = free_port()
    try:
        processes.manage("migrate", "-v", "0", env=env)
        processes.manage("load_demo", env=env)
        stack = processes.ProcessGroup(
            [
                processes.worker("schemathesis", env=env, log=workdir / "worker.log", ready=False),
                processes.daphne(port=port, env=env, log=workdir / "daphne.log"),
            ]
        )
        with stack:
            url = f"http://127.0.0.1:{port}"
            _wait_up(f"{url}/openapi.json")
            script = ROOT / "tests" / "ci" / "schemathesis.sh"
            return subprocess.run([str(script), url, max_examples], cwd=ROOT, env=env).returncode
    finally:
        if redis is not None:
            redis.stop()


def _wait_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
