"""ASGI entry point: Django for HTTP, Channels for the live WebSocket feeds.

The socket stack is Channels' usual one with two changes: the origin check is exact and serves
clients that send no Origin (checkout_site/origin.py), and each consumer can see how much waits
to be sent to its client (checkout_site/socket_transport.py).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")
django_asgi_app = get_asgi_application()

from checkout_site.db.sqlite3.base import connection_reuse_start  # noqa: E402

# Each request's sync code runs in a new thread; on SQLite its connection is reused, not reopened.
connection_reuse_start()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from checkout_site.origin import SameOriginValidator  # noqa: E402
from checkout_site.socket_transport import SocketTransportMiddleware  # noqa: E402
from orders.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The transport probes come first: it must see the server's own send.
        "websocket": SocketTransportMiddleware(
            SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
