"""The Redis broker transport, with one crash of kombu's taken out and its clients kept.

When Redis goes away while a worker holds unacked messages, Celery closes the broken connection
and kombu's channel, on close, tries to put those messages back. By then the connection's
settings are gone, and kombu raises ``AttributeError: 'NoneType' object has no attribute
'hostname'`` (the family of celery/kombu issues 582 and 970). Celery does not expect that error
there: the worker stops with "Unrecoverable error" instead of reconnecting.

The same happens when a task that ran across the outage finishes and acks its message on the
old, closed channel. An ack or reject that cannot reach its channel is dropped here too.

Putting the messages back at close is only a shortcut, and a lost ack only means a redelivery:
the messages stay in Redis's unacked set and come back after the visibility timeout, and if
Redis lost its data the reconciler sends them again (services/bus/reconciler.py). Consumers are
idempotent. So this transport skips what cannot be done, and the worker goes on to reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, redis

log = logging.getLogger(__name__)


class QoS(redis.QoS):
    def restore_unacked_once(self, stderr: Any = None) -> Any:
        try:
            return super().restore_unacked_once(stderr)
        except AttributeError:
            log.warning(
                "broker connection already gone: %s unacked message(s) come back after the "
                "visibility timeout",
                len(self._delivered),
            )
            self._delivered.clear()
            return None

    def ack(self, delivery_tag: Any) -> None:
        if self._channel_gone("ack", delivery_tag):
            return
        super().ack(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if self._channel_gone("reject", delivery_tag):
            return
        super().reject(delivery_tag, requeue=requeue)

    def _channel_gone(self, what: str, delivery_tag: Any) -> bool:
        if self.channel.connection is not None:
            return False
        # The message is redelivered: consumers are idempotent, so its second run is skipped.
        log.warning("%s of message %s dropped: its broker connection is gone", what, delivery_tag)
        self._delivered.pop(delivery_tag, None)
        return True


class Channel(redis.Channel):
    QoS = QoS

    _command_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """A client for one command: kombu builds a new redis-py client object for every
        publish, every message received and every ack (each filling in some 170 response
        callbacks), a fifth of a publish's CPU. A redis-py client is thread-safe and takes its
        connections from the channel's pool, so one is kept for as long as that pool is."""
        if client:
            yield client
            return
        kept = self._command_client
        if kept is None or kept.connection_pool is not self.pool:
            kept = self._command_client = self._create_client()
        yield kept


class Transport(redis.Transport):
    Channel = Channel


def transport_install() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use this transport."""
    TRANSPORT_ALIASES["redis"] = f"{__name__}:Transport"
    TRANSPORT_ALIASES["rediss"] = f"{__name__}:Transport"
