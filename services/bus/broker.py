"""What the broker holds: the depth of every service queue."""

from __future__ import annotations

from kombu.exceptions import ChannelError

from checkout_site.celery import app
from services.bus.registry import queues


def queue_depths() -> dict[str, int]:
    """Messages waiting in each service queue (not counting those a worker has taken)."""
    depths = {}
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in queues():
            try:
                depths[queue] = channel.queue_declare(queue, passive=True).message_count
            except ChannelError:
                depths[queue] = 0  # Redis has no key for an empty queue
    return depths
