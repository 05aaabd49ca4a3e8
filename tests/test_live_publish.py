"""Publishing to the live pages' groups from a thread without an event loop (orders/live.py):
what the channel layer's own members receive, on the session's real Redis."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from orders import live


async def _member(group: str) -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await asyncio.sleep(0.1)  # the subscription reaches Redis before anything is published
    return channel


async def _take(channel: str, n: int) -> list[dict[str, Any]]:
    layer = get_channel_layer()
    return [await asyncio.wait_for(layer.receive(channel), 5) for _ in range(n)]


def _published_then_received(group: str, send: Any, n: int) -> list[dict[str, Any]]:
    async def scenario() -> list[dict[str, Any]]:
        channel = await _member(group)
        try:
            await asyncio.to_thread(send)
            return await _take(channel, n)
        finally:
            await get_channel_layer().group_discard(group, channel)

    return async_to_sync(scenario)()


def _messages(*seqs: int) -> list[dict[str, Any]]:
    return [{"type": "event.message", "message": {"seq": s}, "text": f"#{s}"} for s in seqs]


def test_a_group_member_receives_each_message_once_and_in_order():
    sent = _messages(1, 2, 3)

    received = _published_then_received(
        live.EVENTS_GROUP, lambda: live._publisher.group_send(live.EVENTS_GROUP, sent), 3
    )

    assert received == sent


def test_a_notice_reaches_the_order_group_as_the_layer_sends_it():
    received = _published_then_received(
        live.order_group(424242),
        lambda: live.order_notices_send([424242], {"kind": "record", "label": "a flip"}),
        1,
    )

    assert received == [
        {"type": live.NOTICE_MESSAGE, "text": '{"kind": "record", "label": "a flip"}'}
    ]


def test_a_forked_child_publishes_on_a_connection_of_its_own():
    live._publisher.group_send(live.EVENTS_GROUP, _messages(0))  # the parent's client exists

    def from_a_child() -> None:
        pid = os.fork()
        if pid == 0:
            try:
                live._publisher.group_send(live.EVENTS_GROUP, _messages(7))
                code = 0 if live._publisher._pid == os.getpid() else 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0

    received = _published_then_received(live.EVENTS_GROUP, from_a_child, 1)

    assert received == _messages(7)


@pytest.mark.own_redis
def test_after_redis_restarted_the_next_broadcast_still_goes_out(embedded_redis):
    live._publisher.group_send(live.EVENTS_GROUP, _messages(0))  # its connection is open
    embedded_redis.restart()

    received = _published_then_received(
        live.EVENTS_GROUP, lambda: live._publisher.group_send(live.EVENTS_GROUP, _messages(8)), 1
    )

    assert received == _messages(8)
