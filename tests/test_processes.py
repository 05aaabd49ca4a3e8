"""checkout_site/processes.py: commands built from the registry; a stopped group leaves nothing."""

from __future__ import annotations

import socket

import psutil
import pytest

from checkout_site import processes
from checkout_site.processes import ProcessGroup, service_queues
from tests.conftest import stack_env


def test_the_worker_command_consumes_every_queue_the_registry_lists():
    cmd = processes.worker_command("checkout", service_queues())

    assert cmd[cmd.index("-Q") + 1] == "orders,payment,inventory,notification"
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
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
