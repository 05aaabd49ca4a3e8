"""The channel layer decodes a broadcast once per process (checkout_site/channel_layer.py)."""

from __future__ import annotations

from channels.layers import get_channel_layer

from checkout_site.channel_layer import PubSubChannelLayer


def test_the_sockets_of_one_broadcast_share_one_decoded_message():
    layer = get_channel_layer()
    assert isinstance(layer, PubSubChannelLayer)
    message = {"type": "event.message", "message": {"event": {"seq": 7}}, "text": "{}"}
    raw = layer.serialize(message)

    first, second = layer.deserialize(raw), layer.deserialize(raw)

    assert first == message
    assert second is first


def test_another_broadcast_is_decoded_afresh_even_with_the_same_bytes():
    layer = get_channel_layer()
    raw = layer.serialize({"type": "event.message", "message": {"event": {"seq": 8}}})
    first = layer.deserialize(raw)

    again = layer.deserialize(bytes(bytearray(raw)))

    assert again == first
    assert again is not first
