"""The one place that knows how the checkout's processes are started, waited for and stopped.

``make run``, the benchmark, the soak, the test fixtures and the CI's throwaway stack all start
the same Celery worker, relay and daphne, so they build them here: what the benchmark measures
and what the tests exercise is what ``make run`` runs. The queues come from the subscription
registry (``services.bus.registry.queues``), never from a list written out again.

A process starts in a session (and so a process group) of its own. Ctrl-C in a terminal then
reaches only the launcher, which stops its children in order rather than racing them, and a
stop can kill the whole group, so a worker's pool processes never outlive it.

    with ProcessGroup([worker("checkout", env=env), daphne(port=8000, env=env)]) as group:
        group.wait()
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
ASGI_APPLICATION = "checkout_site.asgi:application"

# Run in a child when this process has no Django: the registry imports every service's handlers.
_QUEUES_SCRIPT = (
    "import django; django.setup(); "
    "from services.bus.registry import queues; print(','.join(queues()))"
)


def service_queues(env: dict[str, str] | None = None) -> list[str]:
    """Every service's queue, as the subscription registry lists them.

    The registry needs Django set up. A launcher that has not set it up (``make run``: its
    settings would not see the Redis it is about to start) asks a child with ``env`` instead.
    """
    from django.apps import apps

    if apps.ready:
        from services.bus.registry import queues

        return queues()
    env = dict(env or os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")
    out = subprocess.run(
        [sys.executable, "-c", _QUEUES_SCRIPT],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().split(",")


# --- commands -------------------------------------------------------------------------------


def manage_command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def worker_command(
    name: str,
    queues: Sequence[str],
    *,
    app: str = "checkout_site",
    concurrency: int | str = 2,
    loglevel: str = "warning",
    options: Sequence[str] = (),
) -> list[str]:
    """A Celery worker consuming ``queues``; ``name`` makes its node name ``name@host``."""
    cmd = [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", ",".join(queues)]
    cmd += ["-c", str(concurrency), "-l", loglevel, "-n", f"{name}@%h"]
    return [*cmd, *options]


def relay_command(*, interval: float | None = None) -> list[str]:
    return manage_command("relay", *(["--interval", str(interval)] if interval else []))


def daphne_command(
    *, port: int | str, host: str = "127.0.0.1", proxy_headers: bool = False
) -> list[str]:
    """daphne serving the site. Behind a load balancer, ``proxy_headers`` makes it take the
    client's address from X-Forwarded-For, which the order rate limit counts by."""
    cmd = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port)]
    return [*cmd, *(["--proxy-headers"] if proxy_headers else []), ASGI_APPLICATION]


def manage(*args: str, env: dict[str, str], quiet: bool = False) -> None:
    """Run one management command to its end (migrate, load_demo); fail loudly if it fails."""
    output = subprocess.DEVNULL if quiet else None
    subprocess.run(manage_command(*args), cwd=ROOT, env=env, check=True, stdout=output)


# --- readiness ------------------------------------------------------------------------------


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def celery_answers(app_module: str, name: str) -> Callable[[], bool]:
    """Ready when the worker named ``name`` answers a ping on ``app_module``'s broker.

    The caller's own Celery app must point at the worker's broker (the tests' and the
    benchmark's do). Each ping takes a connection of its own: a pooled one may have died in a
    Redis restart.
    """

    def ready() -> bool:
        module = importlib.import_module(app_module)
        app = getattr(module, "app", None) or module.celery_app
        with app.connection_for_write() as conn:
            replies = app.control.ping(timeout=0.5, connection=conn)
        return any(key.startswith(f"{name}@") for reply in replies for key in reply)

    return ready


# --- processes ------------------------------------------------------------------------------


@dataclass
class Process:
    """One child process: its command, environment and log, and how to tell it is ready.

    ``log`` None means the child writes to this process's stdout and stderr; a path collects
    both there (appending, so a restarted worker keeps its history in one file), or stderr
    alone when ``start`` is given another stdout.
    """

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    log: Path | None = None
    ready: Callable[[], bool] | None = None
    stop_timeout: float = 15.0
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self, **kwargs: Any) -> Process:
        """Start the child in a session of its own; ``kwargs`` go to Popen (``stdout=PIPE``)."""
        out: IO[bytes] | None = None
        if self.log is not None:
            out = self.log.open("ab")
            kwargs.setdefault("stdout", out)
            kwargs.setdefault("stderr", out)
        try:
            self.popen = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, start_new_session=True, **kwargs
            )
        finally:
            if out is not None:
                out.close()
        return self

    def check(self) -> None:
        """Raise, with its last words, if the child has exited."""
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def is_ready(self) -> bool:
        self.check()
        return self.ready is None or self.ready()

    def wait(self, timeout: float = 60.0) -> Process:
        """Wait until ``ready`` says so; raise if the child exits first or time runs out."""
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.tail()}")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the child, wait, then SIGKILL its whole group.

        TERM goes to the main process only: a Celery worker then finishes or hands back what
        its pool is running, which a TERM to each pool process would cut short. Whatever of
        the group is still there afterwards (a pool process, a hung child) is killed.
        """
        self.terminate()
        self.reap(timeout)

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM), without waiting."""
        if self.popen is not None and self.popen.poll() is None:
            # A paused (SIGSTOPped) child must run to hear the TERM.
            self._signal_group(signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)

    def reap(self, timeout: float | None = None) -> None:
        """Wait for the child to end (killing it after ``timeout``), then kill its group."""
        if self.popen is None:
            return
        try:
            self.popen.wait(timeout=self.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def tail(self, chars: int = 3000) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_text(errors="replace")[-chars:]

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ProcessGroup:
    """Processes started in order, waited for together, and stopped together.

    Any one that exits makes the group unhealthy (``all_running``): ``make run`` then stops the
    rest rather than serve a checkout that silently lost its worker.
    """

    processes: list[Process]

    def __getitem__(self, name: str) -> Process:
        for process in self.processes:
            if process.name == name:
                return process
        raise KeyError(name)

    def __iter__(self) -> Iterator[Process]:
        return iter(self.processes)

    def start(self) -> ProcessGroup:
        for process in self.processes:
            process.start()
        return self

    def wait(self, timeout: float = 60.0) -> ProcessGroup:
        """Wait for every process to be ready; any that exits meanwhile fails the wait."""
        deadline = time.monotonic() + timeout
        pending = list(self.processes)
        while pending:
            for process in self.processes:
                process.check()
            pending = [p for p in pending if not p.is_ready()]
            if pending and time.monotonic() > deadline:
                names = [p.name for p in pending]
                raise RuntimeError(f"not ready after {timeout} s: {names}")
            if pending:
                time.sleep(0.1)
        return self

    def all_running(self) -> bool:
        return all(p.running for p in self.processes)

    def stop(self) -> None:
        """TERM each in order, then wait for each: one slow to stop does not delay the others'
        shutdown, and every one is killed, with its group, if it outlasts its deadline."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.reap()

    def __enter__(self) -> ProcessGroup:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the checkout's processes ---------------------------------------------------------------


WORKER_POOLS = ("prefork", "solo", "threads")


def log_file(name: str, folder: Path | None = None) -> Path:
    """A log file for ``name``: in ``folder``, or a fresh temporary one."""
    if folder is not None:
        return folder / f"{name}.log"
    return Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])


def worker(
    name: str,
    *,
    env: dict[str, str],
    queues: Sequence[str] | None = None,
    app: str = "checkout_site",
    concurrency: int | str = 2,
    loglevel: str = "warning",
    options: Sequence[str] = (),
    log: Path | None = None,
    ready: bool = True,
) -> Process:
    """A Celery worker on ``queues`` (every service's queue by default), node ``name@host``.

    With ``ready``, waiting for it means waiting until it answers a ping, which needs this
    process's Celery app on the same broker; without, it is ready once started.
    """
    queues = list(queues) if queues is not None else service_queues(env)
    return Process(
        name=name,
        argv=worker_command(
            name, queues, app=app, concurrency=concurrency, loglevel=loglevel, options=options
        ),
        env=env,
        log=log,
        ready=celery_answers(app, name) if ready else None,
    )


def workers_per_queue(
    prefix: str,
    *,
    env: dict[str, str],
    count: int = 1,
    log_dir: Path | None = None,
    **kwargs: Any,
) -> list[Process]:
    """``count`` workers per service queue, named ``<prefix>-<queue>`` (then ``-2``, ``-3``...):
    each can be stopped, scaled and restarted on its own, as on many machines."""
    found = []
    for queue in service_queues(env):
        for n in range(1, count + 1):
            name = f"{prefix}-{queue}" + (f"-{n}" if n > 1 else "")
            log = log_file(name, log_dir) if log_dir is not None else None
            found.append(worker(name, env=env, queues=[queue], log=log, **kwargs))
    return found


def relay(
    *, env: dict[str, str], interval: float | None = None, log: Path | None = None
) -> Process:
    """``manage.py relay``: the outbox relay and the reconciler."""
    return Process(name="relay", argv=relay_command(interval=interval), env=env, log=log)


def daphne(
    *,
    port: int,
    env: dict[str, str],
    proxy_headers: bool = False,
    log: Path | None = None,
    name: str = "daphne",
) -> Process:
    """daphne serving the whole site on 127.0.0.1:``port``; ready once it listens."""
    return Process(
        name=name,
        argv=daphne_command(port=port, proxy_headers=proxy_headers),
        env=env,
        log=log,
        ready=lambda: port_open(port),
        stop_timeout=10.0,
    )


def checkout(
    *, env: dict[str, str], port: int, log_dir: Path | None = None, wait_worker: bool = False
) -> ProcessGroup:
    """What ``make run`` runs, and so what the benchmark measures: one worker on every service
    queue (WORKER_CONCURRENCY pool processes), the relay, and daphne on ``port``.

    ``wait_worker`` makes waiting for the group wait for the worker's ping too; it needs this
    process's Celery app on the stack's broker, which the ``make run`` launcher has not.
    """

    def log(name: str) -> Path | None:
        return log_file(name, log_dir) if log_dir is not None else None

    return ProcessGroup(
        [
            *checkout_workers(env=env, log_dir=log_dir, ready=wait_worker),
            relay(env=env, log=log("relay")),
            daphne(port=port, env=env, log=log("daphne")),
        ]
    )


def checkout_workers(
    *,
    env: dict[str, str],
    name: str = "checkout",
    app: str = "checkout_site",
    queues: Sequence[str] | None = None,
    log_dir: Path | None = None,
    log_as: str = "worker",
    ready: bool = True,
) -> list[Process]:
    """``make run``'s workers on every service queue (or ``queues``), by WORKER_POOL.

    prefork (the default): one worker whose parent hands each task to one of
    WORKER_CONCURRENCY child processes, and requeues a task at once when its child dies. solo:
    WORKER_CONCURRENCY workers that each run their tasks in their own process, with no pipe
    between a parent and a child; a task of a worker killed mid-way comes back when the
    broker's visibility timeout ends. The first is named ``name``, the others ``name-2``...,
    and each logs to ``log_as``.log (``log_as``-2.log...) in ``log_dir``.
    """
    pool = env.get("WORKER_POOL", "prefork")
    concurrency = env.get("WORKER_CONCURRENCY", "2")
    if pool not in WORKER_POOLS:
        raise ValueError(f"WORKER_POOL is one of {', '.join(WORKER_POOLS)}, not {pool!r}")
    count = int(concurrency) if pool == "solo" else 1
    found = []
    for n in range(1, count + 1):
        each = name if n == 1 else f"{name}-{n}"
        log = None if log_dir is None else log_file(log_as + ("" if n == 1 else f"-{n}"), log_dir)
        found.append(
            worker(
                each,
                env=env,
                app=app,
                queues=queues,
                concurrency=1 if pool == "solo" else concurrency,
                options=["-P", pool],
                log=log,
                ready=ready,
            )
        )
    return found
