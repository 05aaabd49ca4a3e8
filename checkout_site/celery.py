"""The Celery app: the transport of the event bus. Tasks live in services/bus/tasks.py."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

from checkout_site.broker_transport import transport_install
from checkout_site.tracing import tracing_install

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")

# Before the app makes a connection: a worker must survive Redis going away (see the module).
transport_install()
# Every process of the site imports this module first: spans are exported from each of them.
tracing_install()
app = Celery("checkout_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["services.bus"])

# How long a pool process keeps its SQLite connection between tasks.
WORKER_SQLITE_CONN_MAX_AGE = 600


@worker_process_init.connect
def _keep_sqlite_connection(**_: Any) -> None:
    """Let a pool process keep its SQLite connection between tasks.

    The settings close it after every request (CONN_MAX_AGE=0), which is right for daphne, where
    each request runs on a thread of its own, but a pool process runs one task at a time on one
    thread: reopening the file and rerunning its PRAGMAs cost about 1 ms of CPU per delivery.
    """
    from django.db import connections

    for connection in connections.all(initialized_only=False):
        if connection.vendor == "sqlite" and connection.settings_dict["CONN_MAX_AGE"] == 0:
            connection.settings_dict["CONN_MAX_AGE"] = WORKER_SQLITE_CONN_MAX_AGE


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task: Any = None, **_: Any) -> None:
    """What Django does around a request: close connections that failed or outlived their age.

    Celery's own Django fix-up closes every connection around every task unless
    CELERY_DB_REUSE_MAX is set (settings.py sets it, so this takes over): a connection that
    broke, or a database that restarted, is still replaced on the next task. Like the fix-up,
    it leaves alone a task run eagerly, inside its caller's connection and transaction.
    """
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
