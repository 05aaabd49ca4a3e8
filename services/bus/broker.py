"""What the broker holds: the depth of every service queue."""

from __future__ import annotations

from kombu import Connection
from kombu.exceptions import ChannelError

from services.bus.registry import queues
from services.bus.tasks import deliver


def queue_depths() -> dict[str, int]:
    """Messages waiting in each service queue (not counting those a worker has taken)."""
    with deliver.app.connection_for_write() as conn:
        try:
            return _depths(conn)
        except conn.connection_errors:
            # The broker dropped us (a Redis restart): one more try on a fresh connection.
            conn.collect()
            return _depths(conn.clone())


def _depths(conn: Connection) -> dict[str, int]:
    depths = {}
    channel = conn.default_channel
    for queue in queues():
        try:
            depths[queue] = channel.queue_declare(queue, passive=True).message_count
        except ChannelError:
            depths[queue] = 0  # Redis has no key for an empty queue
    return depths
