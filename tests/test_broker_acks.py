"""Acks on the Redis broker (settings: ``ack_emulation`` off): a worker keeps the messages it
holds in its memory, not in kombu's unacked hash, and puts them back in their queue when its
channel closes without acking them. A worker killed with -9 loses what it held, and the
reconciler sends it again (tests/test_faults_stack.py kills workers under load)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Queue
from kombu.simple import SimpleQueue

from checkout_site.celery import app


@pytest.fixture
def redis_broker() -> Iterator[Connection]:
    connection = app.connection_for_write()
    if connection.transport.driver_type != "redis":
        connection.release()
        pytest.fail("the suite's broker is Redis unless CELERY_BROKER_URL names another")
    try:
        yield connection
    finally:
        connection.release()


def _queue(connection: Connection, name: str = "") -> Any:
    """A queue on a channel of its own, as a worker's consumer has."""
    name = name or f"acks-test-{uuid.uuid4().hex[:8]}"
    return SimpleQueue(connection.channel(), Queue(name, routing_key=name))


def test_a_message_taken_and_not_yet_acked_is_written_nowhere_but_the_workers_memory(
    redis_broker,
):
    queue = _queue(redis_broker)
    try:
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        client = queue.channel.client
        # kombu's emulation would hold it in Redis now, until the ack.
        assert client.hlen(queue.channel.unacked_key) == 0
        assert client.zcard(queue.channel.unacked_index_key) == 0
        assert list(queue.channel.qos._delivered) == [message.delivery_tag]
        message.ack()
        assert message.delivery_tag in queue.channel.qos._dirty  # acked, in memory too
    finally:
        queue.queue.delete()
        queue.channel.close()


def test_a_message_held_when_the_channel_closes_is_back_in_its_queue(redis_broker):
    first = _queue(redis_broker)
    name = first.queue.name
    first.put({"n": 2})
    held = first.get(timeout=5)
    assert held.payload == {"n": 2}
    first.channel.close()  # the worker stops without acking it: its channel gives it back

    again = _queue(redis_broker, name)
    try:
        back = again.get(timeout=5)
        back.ack()
        assert back.payload == {"n": 2}
    finally:
        again.queue.delete()
        again.channel.close()
