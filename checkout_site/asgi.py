"""ASGI entry point: Django for HTTP, Channels for the live WebSocket feeds.

The socket stack is Channels' usual one with two changes: the origin check is exact and serves
clients that send no Origin (checkout_site/origin.py), and each consumer can see how much waits
to be sent to its client (checkout_site/socket_transport.py).
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "checkout_site.settings")
django.setup(set_prefix=False)

from checkout_site.request_threads import RequestThreadsHandler  # noqa: E402

# Django's handler (what get_asgi_application returns), on threads kept between requests.
django_asgi_app = RequestThreadsHandler()

from checkout_site.db.sqlite3.base import connection_reuse_start  # noqa: E402

# On SQLite, the connection Django closes at a request's end is kept for the next request's.
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
