"""The channel layer (checkout_site/channel_layer.py) on the session's real Redis: a pub/sub
connection that fails under a subscribe, or under the receive loop's reconnect, is opened again
whole, and every channel of the process still hears its group.

The failures are the ones redis-py raises when the receive loop and a subscribe reconnect the same
connection at once, after a Redis restart (seen in CI: a page's handshake answered 500). That race
takes hundreds of restarts to happen by itself, so each test makes it happen once, where it did.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from redis.asyncio.client import PubSub

from checkout_site.channel_layer import CheckoutChannelLayer

RACE = "readuntil() called while another coroutine is already waiting for incoming data"


def _layer(kind: type = CheckoutChannelLayer) -> Any:
    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"])
    config["prefix"] = f"layer-test-{uuid.uuid4().hex[:8]}"
    return kind(**config)


def _failing_once(monkeypatch: pytest.MonkeyPatch, name: str, when: Any = None) -> list[str]:
    """``PubSub.<name>`` raises the race's RuntimeError the first time ``when`` holds."""
    original = getattr(PubSub, name)
    raised: list[str] = []

    async def failing(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        if not raised and (when is None or when(*args)):
            raised.append(name)
            raise RuntimeError(RACE)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(PubSub, name, failing)
    return raised


async def _heard(layer: Any, group: str, channel: str) -> dict[str, Any]:
    await layer.group_send(group, {"type": "event.message", "group": group})
    return await asyncio.wait_for(layer.receive(channel), timeout=5)


def test_a_subscribe_that_fails_as_in_the_race_is_tried_again_and_every_channel_hears(
    monkeypatch,
):
    layer = _layer()

    async def scenario() -> tuple[dict, dict]:
        try:
            held = await layer.new_channel()
            await layer.group_add("held", held)
            raised = _failing_once(monkeypatch, "execute_command", lambda *a: a[0] == "SUBSCRIBE")
            opened = await layer.new_channel()  # a page's handshake
            await layer.group_add("opened", opened)
            assert raised, "the subscribe never failed: the test proves nothing"
            return await _heard(layer, "held", held), await _heard(layer, "opened", opened)
        finally:
            await layer.flush()

    held, opened = async_to_sync(scenario)()

    assert held["group"] == "held"
    assert opened["group"] == "opened"


def test_without_it_that_subscribe_fails_the_page(monkeypatch):
    # What channels_redis's own layer does with the same failure: the handshake raises.
    layer = _layer(RedisPubSubChannelLayer)

    async def scenario() -> None:
        try:
            await layer.new_channel()
            _failing_once(monkeypatch, "execute_command", lambda *a: a[0] == "SUBSCRIBE")
            await layer.new_channel()
        finally:
            await layer.flush()

    with pytest.raises(RuntimeError, match="readuntil"):
        async_to_sync(scenario)()


@pytest.mark.own_redis
def test_a_reconnect_that_fails_before_it_subscribes_again_is_done_again(
    monkeypatch, embedded_redis
):
    # Redis restarts under a subscribed process; the receive loop reconnects, and the handshake
    # that would subscribe again fails (the other coroutine read its reply). The connection is
    # open but subscribed to nothing: unless it is opened again, the process hears nothing.
    layer = _layer()

    async def scenario() -> dict:
        # In place before the connection opens: it holds on to the method it registered.
        armed: list[bool] = []
        raised = _failing_once(monkeypatch, "on_connect", lambda *_: armed)
        try:
            held = await layer.new_channel()
            await layer.group_add("held", held)
            armed.append(True)
            await asyncio.to_thread(embedded_redis.restart)
            for _ in range(100):
                if raised:
                    break
                await asyncio.sleep(0.05)
            assert raised, "the reconnect never failed: the test proves nothing"
            await asyncio.sleep(0.5)  # the receive loop has dropped the connection and reopened it
            return await _heard(layer, "held", held)
        finally:
            await layer.flush()

    assert async_to_sync(scenario)()["group"] == "held"
