"""checkout_site/processes.py: commands built from the registry; a stopped group leaves nothing."""

from __future__ import annotations

import socket

import psutil
import pytest

from checkout_site import processes
from checkout_site.processes import ProcessGroup, service_queues
from tests.conftest import stack_env
from tests.helpers import alive


def test_the_worker_command_consumes_every_queue_the_registry_lists():
    cmd = processes.worker_command("checkout", service_queues())

    assert cmd[cmd.index("-Q") + 1] == "orders,payment,inventory,notification,loyalty"
    assert cmd[cmd.index("-n") + 1] == "checkout@%h"


def test_daphne_reads_proxy_headers_only_when_asked():
    assert "--proxy-headers" in processes.daphne_command(port=8001, proxy_headers=True)
    assert "--proxy-headers" not in processes.daphne_command(port=8001)


@pytest.mark.stack
def test_a_worker_per_queue_consumes_its_queue_alone_and_a_stop_leaves_no_process(
    django_db_setup,
):
    from checkout_site.celery import app

    group = ProcessGroup(processes.workers_per_queue("per-queue", env=stack_env()))
    host = socket.gethostname()
    with group:
        group.wait(timeout=120)
        started = [p for w in group for p in psutil.Process(w.pid).children(recursive=True)]
        started += [psutil.Process(w.pid) for w in group]
        nodes = [f"{w.name}@{host}" for w in group]
        with app.connection_for_write() as conn:
            active = app.control.inspect(destination=nodes, timeout=5, connection=conn)
            consumed = active.active_queues() or {}

    assert {node: [q["name"] for q in queues] for node, queues in consumed.items()} == {
        f"per-queue-{queue}@{host}": [queue] for queue in service_queues()
    }
    assert len(started) > len(nodes), "each worker has pool processes"
    assert not [p for p in started if alive(p)]


def _pool(worker: processes.Process) -> tuple[str, str, str]:
    argv = worker.argv
    return worker.name, argv[argv.index("-P") + 1], argv[argv.index("-c") + 1]


def test_make_run_starts_one_prefork_worker_or_as_many_solo_workers_as_its_concurrency():
    prefork = processes.checkout_workers(env={"WORKER_CONCURRENCY": "3"}, ready=False)
    solo = processes.checkout_workers(
        env={"WORKER_POOL": "solo", "WORKER_CONCURRENCY": "3"}, ready=False
    )

    assert [_pool(w) for w in prefork] == [("checkout", "prefork", "3")]
    assert [_pool(w) for w in solo] == [
        ("checkout", "solo", "1"),
        ("checkout-2", "solo", "1"),
        ("checkout-3", "solo", "1"),
    ]


def test_an_unknown_worker_pool_is_refused_by_name():
    refused = "WORKER_POOL is one of prefork, solo, threads, not 'fork'"
    with pytest.raises(ValueError, match=refused):
        processes.checkout_workers(env={"WORKER_POOL": "fork"}, ready=False)


@pytest.mark.stack
def test_solo_workers_each_consume_every_queue_in_their_own_process(django_db_setup):
    from checkout_site.celery import app

    env = stack_env(WORKER_POOL="solo", WORKER_CONCURRENCY="2")
    group = ProcessGroup(processes.checkout_workers(env=env, name="solo"))
    host = socket.gethostname()
    with group:
        group.wait(timeout=120)
        children = [c for w in group for c in psutil.Process(w.pid).children(recursive=True)]
        with app.connection_for_write() as conn:
            inspect = app.control.inspect(
                destination=[f"{w.name}@{host}" for w in group], timeout=5, connection=conn
            )
            consumed = inspect.active_queues() or {}

    assert {node: sorted(q["name"] for q in queues) for node, queues in consumed.items()} == {
        node: sorted(service_queues()) for node in (f"solo@{host}", f"solo-2@{host}")
    }
    assert children == [], "a solo worker runs its tasks in its own process"


def test_the_committed_procfile_is_the_one_the_cluster_runs():
    from checkout_site.cluster import procfile

    committed = (processes.ROOT / "Procfile").read_text()

    assert committed == procfile(dict(stack_env()))
    assert [line.split(":")[0] for line in committed.splitlines()] == [
        "web",
        *(f"worker_{queue}" for queue in service_queues()),
        "relay",
    ]


def test_the_balancer_config_lists_every_web_process_and_keeps_sockets_open():
    from checkout_site.cluster import haproxy_config

    config = haproxy_config(
        bind="127.0.0.1:8000", servers=[("web-1", "127.0.0.1:9001"), ("web-2", "127.0.0.1:9002")]
    )

    assert "bind 127.0.0.1:8000" in config
    assert "server web-1 127.0.0.1:9001 check" in config
    assert "server web-2 127.0.0.1:9002 check" in config
    assert "timeout tunnel 1h" in config and "option forwardfor" in config


def test_run_cluster_says_what_is_missing_and_how_to_get_it():
    from checkout_site.cluster import missing

    problems = missing({"DATABASE_URL": "sqlite:///x", "WEB_PROCESSES": "zero"})

    assert any("PostgreSQL" in p and "createdb" in p for p in problems)
    assert any("REDIS_URL" in p for p in problems)
    assert any("CELERY_BROKER_URL" in p and "add_vhost" in p for p in problems)
    assert any("WEB_PROCESSES" in p for p in problems)
