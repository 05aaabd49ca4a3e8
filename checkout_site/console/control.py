"""Stopping and starting a service's consumption of its queue, at the broker.

Stop cancels the queue's consumer in every worker through Celery's remote control, so the
service's messages wait in the broker; start adds it back and the backlog drains. The operator's
wish is stored (``ServiceState``) and told again to every worker that starts, so a stopped
service stays stopped across page reloads and worker restarts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import signals
from django.db import DatabaseError, connection, transaction
from kombu.exceptions import OperationalError

from checkout_site.celery import app
from checkout_site.console.models import ServiceState
from services.bus.registry import subscriber, subscribers

log = logging.getLogger(__name__)

# How long a control call waits for workers to confirm; a worker that is busy or down still gets
# the broadcast when it reads its mailbox, and a worker that starts later reads ServiceState.
_REPLY_TIMEOUT = 1.0
_STATE_CACHE_SECONDS = 1.0
_state_cache: tuple[float, dict[str, bool]] = (float("-inf"), {})


class BrokerUnreachable(RuntimeError):
    pass


def services_running() -> dict[str, bool]:
    """Every service and whether the operator wants it consuming (read at most once a second)."""
    global _state_cache
    loaded_at, state = _state_cache
    if time.monotonic() - loaded_at < _STATE_CACHE_SECONDS:
        return state
    stored = dict(ServiceState.objects.values_list("service", "running"))
    state = {name: stored.get(name, True) for name in subscribers()}
    _state_cache = (time.monotonic(), state)
    return state


def services_state_forget() -> None:
    global _state_cache
    _state_cache = (float("-inf"), {})


def service_stop(*, name: str, by: str = "") -> list[dict[str, Any]]:
    """Store the wish, then cancel the queue's consumer in every worker; returns their replies."""
    return _service_set(name=name, running=False, by=by)


def service_start(*, name: str, by: str = "") -> list[dict[str, Any]]:
    return _service_set(name=name, running=True, by=by)


def _service_set(*, name: str, running: bool, by: str) -> list[dict[str, Any]]:
    """Raises ``BrokerUnreachable`` if the broker cannot carry the broadcast; the stored wish is
    then rolled back, so the console never shows a state the workers were not told."""
    queue = subscriber(name).queue
    with transaction.atomic():
        ServiceState.objects.update_or_create(
            service=name, defaults={"running": running, "changed_by": by}
        )
        command = app.control.add_consumer if running else app.control.cancel_consumer
        with app.connection_for_write() as conn:
            # kombu wraps most transport errors in OperationalError, but not all of them.
            failures = (OperationalError, *conn.connection_errors, *conn.channel_errors)
            try:
                replies = command(queue, reply=True, timeout=_REPLY_TIMEOUT, connection=conn)
            except failures as exc:
                raise BrokerUnreachable(str(exc) or type(exc).__name__) from exc
    services_state_forget()
    return replies or []


def consumers_by_worker(timeout: float = 1.0) -> dict[str, list[str]]:
    """Which queues each live worker consumes right now, as the workers themselves say."""
    # A connection of its own, like the commands above: a pooled one may have died with Redis.
    with app.connection_for_write() as conn:
        replies = app.control.inspect(timeout=timeout, connection=conn).active_queues() or {}
    return {worker: sorted(q["name"] for q in queues) for worker, queues in replies.items()}


def _stopped_queues() -> list[str]:
    try:
        return [subscriber(n).queue for n, running in services_running().items() if not running]
    except DatabaseError:
        # A worker must come up even while the database does; it then consumes everything.
        log.warning("could not read which services are stopped", exc_info=True)
        return []
    finally:
        # Read in the worker's main process, which forks the pool: it keeps no connection open
        # for a child to inherit (checkout_site/console/heartbeat.py says why).
        connection.close()


@signals.celeryd_after_setup.connect
def _deselect_stopped_queues(sender: str, instance: Any, **kwargs: Any) -> None:
    # After -Q is applied and before the first message is taken: a stopped service's queue is
    # never consumed by a worker that starts while it is stopped.
    services_state_forget()
    stopped = _stopped_queues()
    if stopped:
        instance.app.amqp.queues.deselect(stopped)
        log.warning("not consuming %s: stopped from the console", ", ".join(stopped))


@signals.worker_ready.connect
def _cancel_stopped_queues(sender: Any, **kwargs: Any) -> None:
    # Stopped between set-up and now (the broadcast came before this worker listened).
    services_state_forget()
    consuming = {q.name for q in sender.task_consumer.queues} if sender.task_consumer else set()
    for queue in _stopped_queues():
        if queue in consuming:
            sender.cancel_task_queue(queue)
