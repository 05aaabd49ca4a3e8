"""What a stranger can reach: production settings, sockets from other sites, the admin, CSRF,
and the payment token, which never appears whole in a page, a socket message, a log line or an
admin screen.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import subprocess
import sys
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from checkout_site.asgi import application
from services.bus.models import DeadLetter, Event
from services.bus.reconciler import tokens_redact
from services.bus.tasks import deliver
from tests.bus_sim import InProcessBus
from tests.conftest import ROOT
from tests.helpers import ARTICLE_ORDER, post_order

TOKEN = "tok_WholeSecret9876"
BODY = {**ARTICLE_ORDER, "paymentToken": TOKEN}


def test_check_deploy_with_the_production_settings_reports_nothing():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _production_variables() -> dict[str, str]:
    """The variables .env.example's production section sets, with a fresh secret key."""
    section = (ROOT / ".env.example").read_text().split("# --- Production ---", 1)[1]
    variables = dict(re.findall(r"^# ([A-Z_]+)=(\S*)", section, re.MULTILINE))
    variables["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    return variables


def test_check_deploy_with_what_env_example_says_for_production_reports_nothing():
    variables = _production_variables()

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert variables["DJANGO_DEBUG"] == "false" and variables["DJANGO_ALLOWED_HOSTS"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "False"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


async def _ws_connects(path: str, origin: bytes) -> bool:
    headers = [(b"origin", origin), (b"host", b"127.0.0.1:8000")]
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=5)
    await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/events/", "/ws/orders/{order}/"])
def test_a_socket_from_a_foreign_origin_is_refused(path, customer, product):
    path = path.format(order=post_order(Client()).json()["orderId"])

    assert async_to_sync(_ws_connects)(path, b"http://127.0.0.1:8000") is True
    assert async_to_sync(_ws_connects)(path, b"https://evil.example") is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    "page",
    [
        "/admin/",
        "/admin/orders/order/",
        "/admin/bus/event/",
        "/admin/payment/payment/",
        "/admin/bus/deadletter/",
    ],
)
def test_the_admin_sends_anyone_not_staff_to_the_login_page(client, page):
    get_user_model().objects.create_user("shopper", password="pw")
    client.login(username="shopper", password="pw")

    response = client.get(page)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def _dead_letter(envelope: dict) -> DeadLetter:
    return DeadLetter.objects.create(
        service="payment",
        event_id=envelope["eventId"],
        event_type=envelope["type"],
        order_id=envelope["orderId"],
        envelope=envelope,
        error=f"ValueError: paymentToken {envelope['payload']['paymentToken']!r} refused",
        attempts=6,
    )


def _order_created_envelope(order_id: int = 1) -> dict:
    return {
        "seq": 1,
        "eventId": str(uuid.uuid4()),
        "type": "OrderCreated",
        "version": 1,
        "orderId": order_id,
        "occurredAt": timezone.now().isoformat(),
        "producer": "orders",
        "causationId": None,
        "payload": {
            "userId": 123,
            "productId": 456,
            "quantity": 1,
            "amount": "89.00",
            "paymentToken": TOKEN,
            "customerEmail": "ada@example.com",
        },
    }


@pytest.mark.django_db
def test_a_redrive_by_someone_not_staff_is_refused_and_changes_nothing():
    letter = _dead_letter(_order_created_envelope())
    get_user_model().objects.create_user("shopper", password="pw")
    client = Client()
    client.login(username="shopper", password="pw")

    response = client.post(
        "/admin/bus/deadletter/", {"action": "redrive", "_selected_action": [letter.pk]}
    )

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    letter.refresh_from_db()
    assert letter.redriven_at is None


@pytest.mark.django_db
def test_every_form_needs_its_csrf_token():
    staff = get_user_model().objects.create_user(
        "staff", password="pw", is_staff=True, is_superuser=True
    )
    letter = _dead_letter(_order_created_envelope())
    client = Client(enforce_csrf_checks=True)

    shop = client.get("/").content.decode()
    assert 'name="csrfmiddlewaretoken"' in shop
    login = client.post("/admin/login/", {"username": "staff", "password": "pw"})
    assert login.status_code == 403
    client.force_login(staff)
    redrive = client.post(
        "/admin/bus/deadletter/", {"action": "redrive", "_selected_action": [letter.pk]}
    )
    assert redrive.status_code == 403
    letter.refresh_from_db()
    assert letter.redriven_at is None


@pytest.mark.django_db(transaction=True)
def test_the_token_is_never_whole_in_pages_sockets_logs_or_admin(
    customer, product, admin_client, caplog
):
    caplog.set_level(logging.DEBUG)
    order_id = post_order(Client(), BODY).json()["orderId"]
    InProcessBus().drain()
    letter = _dead_letter(_order_created_envelope(order_id))
    deliver.apply(args=("payment", {**_order_created_envelope(order_id), "type": "Nope"}))
    screens = [
        Client().get("/").content.decode(),
        Client().get(f"/orders/{order_id}").content.decode(),
        Client()
        .get(f"/orders/{order_id}", headers={"Accept": "application/json"})
        .content.decode(),
        Client().get("/products").content.decode(),
    ]
    for page in [
        "/admin/orders/order/",
        f"/admin/orders/order/{order_id}/change/",
        "/admin/bus/event/",
        *(f"/admin/bus/event/{seq}/change/" for seq in _seqs(order_id)),
        "/admin/payment/payment/",
        "/admin/bus/deadletter/",
        f"/admin/bus/deadletter/{letter.pk}/change/",
        *(f"/admin/bus/deadletter/{d.pk}/change/" for d in DeadLetter.objects.all()),
    ]:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        screens.append(response.content.decode())
    screens.append(json.dumps(async_to_sync(_socket_messages)(order_id)))

    assert "tok_****9876" in screens[2]
    assert "tok_****9876" in screens[-1]
    assert all(TOKEN not in screen for screen in screens)
    assert TOKEN not in caplog.text


async def _socket_messages(order_id: int | None, path: str = "") -> list[dict]:
    communicator = WebsocketCommunicator(
        application,
        path or f"/ws/orders/{order_id}/",
        headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    messages = []
    while not await communicator.receive_nothing(timeout=0.5):
        messages.append(await communicator.receive_json_from())
    await communicator.disconnect()
    return messages


def _seqs(order_id: int) -> list[int]:
    return list(Event.objects.filter(order_id=order_id).values_list("seq", flat=True))


@pytest.mark.django_db
def test_the_log_keeps_the_token_only_until_every_service_has_handled_it(customer, product):
    order_id = post_order(Client(), BODY).json()["orderId"]
    created = Event.objects.get(order_id=order_id, type="OrderCreated")
    Event.objects.filter(pk=created.pk).update(published_at=timezone.now())
    bus = InProcessBus()
    bus.deliver("payment", created)

    assert tokens_redact() == 0, "inventory and notification have not handled it yet"
    bus.drain()
    assert tokens_redact() == 1
    created.refresh_from_db()
    assert created.payload["paymentToken"] == "tok_****9876"
    # A late copy of the redacted event is still a valid event, and a duplicate.
    assert bus.deliver("payment", created) == "duplicate"


@pytest.mark.django_db
def test_a_request_response_orders_token_is_masked_by_the_next_pass(client, customer, product):
    response = client.post("/orders/sync", data=BODY, content_type="application/json")
    order_id = response.json()["orderId"]

    tokens_redact()

    created = Event.objects.get(order_id=order_id, type="OrderCreated")
    assert created.payload["paymentToken"] == "tok_****9876"


ADDRESS = "zelda.quinn-7@example.org"


@pytest.mark.django_db(transaction=True)
def test_no_public_page_json_or_socket_shows_a_customers_email_whole(product, admin_client):
    from orders.models import Customer

    Customer.objects.create(pk=123, name="Zelda", email=ADDRESS)
    order_id = post_order(Client(), BODY).json()["orderId"]
    InProcessBus().drain()
    sync_id = Client().post("/orders/sync", data=BODY, content_type="application/json").json()
    assert Event.objects.filter(payload__to=ADDRESS).exists(), "the e-mail was sent and logged"
    public = [
        Client().get(path, headers=headers).content.decode()
        for path in ("/", "/compare", "/products", f"/orders/{order_id}")
        for headers in ({}, {"Accept": "application/json"})
    ]
    public.append(json.dumps(sync_id))
    public.append(json.dumps(async_to_sync(_socket_messages)(order_id)))
    public.append(json.dumps(async_to_sync(_socket_messages)(None, "/ws/events/?after=0")))

    assert all(ADDRESS not in text for text in public)
    assert "z***@example.org" in public[7], "the order's JSON says whom it was sent to, masked"
    staff = admin_client.get(f"/admin/orders/customer/{123}/change/").content.decode()
    assert ADDRESS in staff


@pytest.mark.django_db(transaction=True)
def test_a_short_token_shows_none_of_its_secret_in_public(customer, product):
    order_id = post_order(Client(), {**ARTICLE_ORDER, "paymentToken": "tok_zq47"}).json()["orderId"]
    InProcessBus().drain()

    public = Client().get(f"/orders/{order_id}", headers={"Accept": "application/json"})

    types = [e["type"] for e in public.json()["events"]]
    assert "PaymentProcessed" in types
    assert "zq47" not in public.content.decode()
