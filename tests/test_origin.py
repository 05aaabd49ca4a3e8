"""Which socket handshakes the site serves: its own origin exactly, trusted origins, and clients
that send no Origin; every other origin (another port or scheme of our own host included) is
refused with 403. Each drives the real ASGI application with ``WebsocketCommunicator``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from checkout_site.asgi import application
from orders.contract import OrderRequest
from orders.sync_checkout import order_place_sync
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)

Headers = list[tuple[bytes, bytes]]


def _connects(path: str, headers: Headers, **scope: object) -> bool:
    async def scenario() -> bool:
        communicator = WebsocketCommunicator(application, path, headers=headers)
        communicator.scope.update(scope)
        try:
            connected, _ = await communicator.connect(timeout=5)
            return connected
        finally:
            await communicator.disconnect()

    return async_to_sync(scenario)()


@pytest.fixture(params=["/ws/events/", "/ws/orders/{order}/"], ids=["feed", "order"])
def path(request, customer, product) -> str:
    order = order_place_sync(
        request=OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    ).order
    return request.param.format(order=order.pk)


@pytest.mark.parametrize(
    "headers",
    [[], [(b"host", b"127.0.0.1:8000")], [(b"host", b"shop.example.com")]],
    ids=["no headers", "host only", "unknown host"],
)
def test_a_client_that_sends_no_origin_is_served(path, headers):
    assert _connects(path, headers) is True


SERVED, REFUSED = True, False


@pytest.mark.parametrize(
    ("origin", "host", "served"),
    [
        pytest.param(b"http://127.0.0.1:8000", b"127.0.0.1:8000", SERVED, id="same"),
        pytest.param(b"http://localhost:8000", b"localhost:8000", SERVED, id="same, localhost"),
        pytest.param(b"http://[::1]:8000", b"[::1]:8000", SERVED, id="same, IPv6"),
        pytest.param(b"http://127.0.0.1", b"127.0.0.1", SERVED, id="same, default port"),
        pytest.param(b"http://127.0.0.1:8001", b"127.0.0.1:8000", REFUSED, id="other port"),
        pytest.param(b"http://127.0.0.1", b"127.0.0.1:8000", REFUSED, id="port 80 for 8000"),
        pytest.param(b"http://localhost:3000", b"localhost:8000", REFUSED, id="dev server"),
        pytest.param(b"http://localhost:8000", b"127.0.0.1:8000", REFUSED, id="other host"),
        pytest.param(b"https://127.0.0.1:8000", b"127.0.0.1:8000", REFUSED, id="other scheme"),
        pytest.param(b"null", b"127.0.0.1:8000", REFUSED, id="null"),
        pytest.param(b"http://127.0.0.1:8000", b"evil.example:8000", REFUSED, id="bad Host"),
        pytest.param(b"http://evil.example:8000", b"evil.example:8000", REFUSED, id="both bad"),
        pytest.param(b"http://127.0.0.1:8000", b"", REFUSED, id="empty Host"),
    ],
)
def test_a_browser_is_served_only_from_the_sites_own_scheme_host_and_port(
    path, origin, host, served
):
    assert _connects(path, [(b"origin", origin), (b"host", host)]) is served


def test_an_origin_without_a_host_to_compare_it_with_is_refused(path):
    assert _connects(path, [(b"origin", b"http://127.0.0.1:8000")]) is False


@pytest.mark.parametrize(
    "twice",
    [
        [(b"origin", b"http://127.0.0.1:8000"), (b"origin", b"http://evil.example")],
        [(b"host", b"127.0.0.1:8000"), (b"host", b"evil.example")],
    ],
    ids=["Origin", "Host"],
)
def test_a_header_sent_twice_is_refused(path, twice):
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    headers = [h for h in headers if h[0] != twice[0][0]] + twice

    assert _connects(path, headers) is False


def test_the_trusted_origins_are_served_and_only_they(path, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://shop.example.com", "https://*.example.org"]
    host = (b"host", b"127.0.0.1:8000")

    assert _connects(path, [(b"origin", b"https://shop.example.com"), host]) is True
    assert _connects(path, [(b"origin", b"https://eu.example.org"), host]) is True
    assert _connects(path, [(b"origin", b"http://shop.example.com"), host]) is False
    assert _connects(path, [(b"origin", b"https://shop.example.com:8443"), host]) is False
    assert _connects(path, [(b"origin", b"https://example.org.evil.example"), host]) is False


def test_behind_tls_the_sites_https_origin_is_served_and_its_http_one_refused(path, settings):
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    behind_proxy = [(b"host", b"shop.example.com"), (b"x-forwarded-proto", b"https")]

    assert _connects(path, [(b"origin", b"https://shop.example.com"), *behind_proxy]) is True
    assert _connects(path, [(b"origin", b"http://shop.example.com"), *behind_proxy]) is False
    direct = [(b"origin", b"https://shop.example.com"), (b"host", b"shop.example.com")]
    assert _connects(path, direct, scheme="wss") is True
    assert _connects(path, direct) is False


def test_the_default_allowed_hosts_are_the_local_ones_only():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(','.join(settings.ALLOWED_HOSTS))",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "checkout_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "127.0.0.1,localhost,[::1]"
