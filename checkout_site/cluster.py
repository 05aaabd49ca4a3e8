"""``make run-cluster``: the many-machine shape on one machine, from the same code.

It runs on the engines the environment names: ``DATABASE_URL`` (PostgreSQL), ``REDIS_URL`` (the
channel layer) and ``CELERY_BROKER_URL`` (Redis or RabbitMQ). On them: ``WEB_PROCESSES`` daphne
processes (default 2) behind HAProxy on ``PORT``, ``WORKERS_PER_QUEUE`` Celery workers (default
1) for each service queue, and the relay. A process that dies is started again, as a supervisor
on each machine would; Ctrl-C stops everything.

``python -m checkout_site.cluster --procfile`` prints the same processes as a Procfile, for a
process manager on each machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from string import Template
from typing import Any

from checkout_site import processes
from checkout_site.embedded_redis import free_port

HAPROXY_TEMPLATE = Path(__file__).resolve().parent / "deploy" / "haproxy.cfg"
_RESTART_AFTER_S = 1.0


def missing(env: dict[str, str]) -> list[str]:
    """What the cluster cannot run without, each with how to get it."""
    problems = []
    if not env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://", "pgsql://")):
        problems.append(
            "DATABASE_URL must name a PostgreSQL database (SQLite takes one writer at a time): "
            "createdb checkout && export DATABASE_URL=postgres://postgres@127.0.0.1:5432/checkout"
        )
    if not env.get("REDIS_URL"):
        problems.append(
            "REDIS_URL must name a Redis server shared by every web process: "
            "apt-get install redis-server && export REDIS_URL=redis://127.0.0.1:6379/0"
        )
    if not env.get("CELERY_BROKER_URL"):
        problems.append(
            "CELERY_BROKER_URL must name the broker every worker shares, Redis or RabbitMQ "
            "(a vhost of its own: rabbitmqctl add_vhost checkout && rabbitmqctl set_permissions "
            "-p checkout guest '.*' '.*' '.*'): export "
            "CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/checkout"
        )
    if shutil.which("haproxy") is None:
        problems.append("no load balancer: apt-get install haproxy")
    for name in ("WEB_PROCESSES", "WORKERS_PER_QUEUE", "PORT"):
        if not env.get(name, "1").isdigit() or int(env.get(name, "1")) < 1:
            problems.append(f"{name}={env[name]!r} must be a whole number of at least 1")
    return problems


def haproxy_config(*, bind: str, servers: list[tuple[str, str]]) -> str:
    lines = "\n".join(
        f"    server {name} {address} check inter 1s fall 2 rise 1" for name, address in servers
    )
    return Template(HAPROXY_TEMPLATE.read_text()).substitute(bind=bind, servers=lines)


def cluster(env: dict[str, str], *, port: int, folder: Path) -> processes.ProcessGroup:
    web_ports = [free_port() for _ in range(int(env.get("WEB_PROCESSES", "2")))]
    config = folder / "haproxy.cfg"
    config.write_text(
        haproxy_config(
            bind=f"127.0.0.1:{port}",
            servers=[(f"web-{n}", f"127.0.0.1:{p}") for n, p in enumerate(web_ports, start=1)],
        )
    )
    env = {**env, "WORKER_CONCURRENCY": env.get("WORKER_CONCURRENCY", "1")}
    return processes.ProcessGroup(
        [
            *(
                processes.daphne(
                    port=p,
                    env=env,
                    proxy_headers=True,
                    name=f"web-{n}",
                    log=folder / f"web-{n}.log",
                )
                for n, p in enumerate(web_ports, start=1)
            ),
            *processes.workers_per_queue(
                "cluster",
                env=env,
                count=int(env.get("WORKERS_PER_QUEUE", "1")),
                concurrency=env["WORKER_CONCURRENCY"],
                log_dir=folder,
                ready=False,
            ),
            processes.relay(env=env, log=folder / "relay.log"),
            processes.Process(
                name="haproxy",
                argv=["haproxy", "-f", str(config)],
                env=env,
                log=folder / "haproxy.log",
                ready=lambda: processes.port_open(port),
            ),
        ]
    )


def procfile(env: dict[str, str]) -> str:
    """The cluster's processes for a process manager (honcho, foreman): one line each."""
    web = processes.daphne_command(port="$PORT", host="0.0.0.0", proxy_headers=True)
    lines = [f"web: {_shell(web)}"]
    for queue in processes.service_queues(env):
        worker = processes.worker_command(queue, [queue], concurrency="${WORKER_CONCURRENCY:-2}")
        lines.append(f"worker_{queue}: {_shell(worker)}")
    lines.append(f"relay: {_shell(processes.relay_command())}")
    return "\n".join(lines) + "\n"


def _shell(argv: list[str]) -> str:
    # The process manager runs it from the project's folder, with its own Python on the PATH.
    local = {sys.executable: "python", str(processes.ROOT / "manage.py"): "manage.py"}
    return " ".join(local.get(word, word) for word in argv)


def main() -> int:
    env = dict(os.environ)
    if sys.argv[1:] == ["--procfile"]:
        sys.stdout.write(procfile(env))
        return 0
    problems = missing(env)
    if problems:
        print("make run-cluster needs:", *(f"  - {p}" for p in problems), sep="\n", file=sys.stderr)
        return 2
    port = int(env.get("PORT", "8000"))
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    folder = Path(tempfile.mkdtemp(prefix="checkout-cluster-"))
    group = processes.ProcessGroup([])
    try:
        processes.manage("migrate", "--noinput", "-v", "0", env=env)
        processes.manage("load_demo", env=env)
        processes.manage("collectstatic", "--noinput", "-v", "0", env=env)
        group = cluster(env, port=port, folder=folder).start()
        group.wait(timeout=120)
        names = ", ".join(p.name for p in group)
        print(f"\nCheckout Live (cluster) on http://127.0.0.1:{port}/ through HAProxy: {names}")
        print(f"logs in {folder}  (Ctrl-C stops it all)\n", flush=True)
        _supervise(group)
        return 0
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"the cluster could not start: {exc}", file=sys.stderr)
        return 1
    finally:
        group.stop()


def _supervise(group: processes.ProcessGroup) -> None:
    """Start again any process that died, as systemd or a process manager would."""
    while True:
        for process in group:
            if not process.running:
                print(f"{process.name} exited ({process.popen.returncode}); starting it again")
                process.reap(timeout=1)
                time.sleep(_RESTART_AFTER_S)
                process.start()
        time.sleep(0.5)


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
