"""The socket paths. Anything else is refused at the handshake (403), never a server error."""

from __future__ import annotations

from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from orders import consumers

websocket_urlpatterns = [
    path("ws/events/", consumers.EventFeedConsumer.as_asgi()),
    # An order id is a bigint: at most 19 digits here, and the consumer refuses one past 2**63-1
    # before it reaches the database. `abc`, `-1` and 5,000 digits match no route at all.
    re_path(r"^ws/orders/(?P<order_id>[0-9]{1,19})/$", consumers.OrderTimelineConsumer.as_asgi()),
    re_path(r"", WebsocketDenier.as_asgi()),
]
