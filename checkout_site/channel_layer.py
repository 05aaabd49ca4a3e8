"""The channel layer: channels_redis's pub/sub layer, made to survive a Redis restart whoever
notices it first.

Each process holds one pub/sub connection per Redis host. channels_redis reads it in one task
(the receive loop) and subscribes on it from others (a page's handshake, the feed's fan-out).
When Redis has restarted, both find the connection dead and reconnect it at the same moment.
redis-py's asyncio connection is not safe for that: one of the two fails with
``RuntimeError: readuntil() called while another coroutine is already waiting`` or a
``ConnectionError`` (or, if the other closed it under it, ``AttributeError``). When the
subscribe fails, so does the page's handshake (daphne answers 500);
when the handshake of the reconnect fails, the connection is left open without its
subscriptions, and the process hears nothing until the next restart.

So here a failed subscribe or unsubscribe, and a failed read in the receive loop, drop the
connection. The next use opens it whole: redis-py subscribes again to every channel it had
before it sends anything else. The subscribe is then tried again, a few times with a growing
pause, so a page that opens just after a restart is served.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisSingleShardConnection

log = logging.getLogger(__name__)

# The pauses between attempts; a subscribe that still fails after them raises.
RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8)
_RECEIVE_IDLE_S = 0.1
_RECEIVE_RETRY_S = 0.2


class _Shard(RedisSingleShardConnection):
    """One host's pub/sub connection, dropped and opened again when it fails."""

    async def subscribe(self, channel: str) -> None:
        await self._retrying(super().subscribe, channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._retrying(super().unsubscribe, channel)

    async def _retrying(self, operation: Callable[[str], Awaitable[None]], channel: str) -> None:
        for delay in RETRY_DELAYS_S:
            try:
                await operation(channel)
                return
            except Exception as exc:
                # A connection Redis dropped raises ConnectionError; one that two coroutines
                # reconnect at once, RuntimeError or AttributeError (a stream set to None under
                # the other): all of them pass once the connection is opened again alone.
                log.warning("pub/sub %s failed (%r); reconnecting", operation.__name__, exc)
                await self.drop()
                await asyncio.sleep(delay)
        await operation(channel)

    async def drop(self) -> None:
        """Close the connection; its next use opens it again, with every subscription it had."""
        pubsub = self._pubsub
        if pubsub is not None and pubsub.connection is not None:
            await pubsub.connection.disconnect()

    async def _do_receiving(self) -> None:
        while True:
            try:
                pubsub = self._pubsub
                if pubsub is not None and pubsub.subscribed:
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=_RECEIVE_IDLE_S
                    )
                    self._receive_message(message)
                else:
                    await asyncio.sleep(_RECEIVE_IDLE_S)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception:
                log.warning("pub/sub receive failed; reconnecting", exc_info=True)
                try:
                    await self.drop()
                except Exception:
                    log.warning("pub/sub connection could not be closed", exc_info=True)
                await asyncio.sleep(_RECEIVE_RETRY_S)


class CheckoutChannelLayer(RedisPubSubChannelLayer):
    """``channels_redis.pubsub.RedisPubSubChannelLayer``, with shards that reconnect whole."""

    def _get_layer(self) -> Any:
        layer = super()._get_layer()
        shards = layer._shards
        if shards and type(shards[0]) is not _Shard:
            # A loop's layer is new here: no shard has opened a connection yet.
            layer._shards = [_Shard(shard.host, layer) for shard in shards]
        return layer
