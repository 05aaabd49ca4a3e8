"""The channel layer: channels_redis's pub/sub layer, decoding each broadcast once per process.

A group message reaches this process as one Redis pub/sub message, which the layer puts, as the
same bytes, in the queue of every socket in the group; each socket then decoded it for itself.
With 1,000 feed sockets that was 1,000 msgpack decodes of one message, 12 % of daphne's time
(``python -m bench.profile --sockets 1000``). Now the first socket decodes it and the others
get the same dict. The sockets' handlers (orders/consumers.py) only read the messages they get.
"""

from __future__ import annotations

from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last: tuple[bytes | None, Any] = (None, None)

    def deserialize(self, message: bytes) -> Any:
        raw, decoded = self._last
        if message is raw:
            return decoded
        decoded = super().deserialize(message)
        self._last = (message, decoded)
        return decoded
