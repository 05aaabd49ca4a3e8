"""Bare Celery: the floor the pipeline is measured against.

The same broker settings as the checkout's (checkout_site/settings.py: JSON, ``acks_late``,
``reject_on_worker_lost``, a prefetch window of 4, no results) and the same worker command, but
tasks that do nothing: no database, no validation, no outbox, no broadcast. It uses its own Redis
database number on the same server, so its queue and unacked set never mix with the pipeline's.

Worker: ``BENCH_BARE_BROKER=redis://... celery -A bench.bare worker -Q bare -c 2``.
"""

from __future__ import annotations

import os
from functools import cache

import redis
from celery import Celery

QUEUE = "bare"
DONE_KEY = "bench:chain:done"

app = Celery("bare")
app.conf.update(
    broker_url=os.environ.get("BENCH_BARE_BROKER", "redis://127.0.0.1:6379/1"),
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=4,
    broker_transport_options={
        "visibility_timeout": 60,
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
    },
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
)


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(app.conf.broker_url)


@app.task(name="bare.noop")
def noop() -> None:
    return None


@app.task(name="bare.done")
def done(token: str) -> None:
    """The last link of a chain tells the client, the way the pipeline's last hop tells a page."""
    _redis().lpush(DONE_KEY, token)
