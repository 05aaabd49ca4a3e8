"""Serve a throwaway Checkout Live and run tests/ci/schemathesis.sh against it.

    .venv/bin/python tests/ci/schemathesis_serve.py [MAX_EXAMPLES]

A fresh SQLite file with the demo catalog, an embedded Redis unless REDIS_URL is set, a Celery
worker (so accepted orders really run) and daphne on a free port. Everything it starts is
stopped at the end; the exit code is schemathesis's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from checkout_site.embedded_redis import EmbeddedRedis, free_port  # noqa: E402


def main() -> int:
    max_examples = sys.argv[1] if len(sys.argv) > 1 else "150"
    workdir = Path(tempfile.mkdtemp(prefix="schemathesis-"))
    redis = None
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}", EMAIL_URL="dummy:")
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis().start()
        env["REDIS_URL"] = redis.url
    env.pop("CELERY_BROKER_URL", None)
    port = free_port()
    children: list[subprocess.Popen[bytes]] = []
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "load_demo"], cwd=ROOT, env=env, check=True)
        log = (workdir / "stack.log").open("ab")
        worker = [sys.executable, "-m", "celery", "-A", "checkout_site", "worker", "-l", "warning"]
        worker += ["-Q", "orders,payment,inventory,notification", "-c", "2"]
        children.append(subprocess.Popen(worker, cwd=ROOT, env=env, stdout=log, stderr=log))
        daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        children.append(
            subprocess.Popen(
                [*daphne, "checkout_site.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=log,
            )
        )
        url = f"http://127.0.0.1:{port}"
        _wait_up(f"{url}/openapi.json")
        script = ROOT / "tests" / "ci" / "schemathesis.sh"
        return subprocess.run([str(script), url, max_examples], cwd=ROOT, env=env).returncode
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
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
