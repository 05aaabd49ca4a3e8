"""Bad input: every limit of POST /orders, the rate limit, and fuzzed events on the consumer side.

A malformed or unknown event is parked in the dead-letter store, and nothing of it is applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order, OrderInbox
from services.bus.models import DeadLetter, Event
from services.bus.schemas import payload_class
from services.bus.tasks import deliver
from services.inventory.models import InventoryInbox, Reservation, Stock
from services.notification.models import Join, NotificationInbox, SentNotification
from services.payment.models import Payment, PaymentInbox
from tests.conftest import ROOT
from tests.helpers import ARTICLE_ORDER, post_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalog(customer, product):
    return customer, product


def _nothing_created() -> bool:
    return Order.objects.count() == 0 and Event.objects.count() == 0


# --- limits ---------------------------------------------------------------------------------


def test_the_quantity_cap_follows_the_setting_and_is_named(client, settings):
    settings.ORDER_MAX_QUANTITY = 3

    refused = post_order(client, {**ARTICLE_ORDER, "quantity": 4})
    accepted = post_order(client, {**ARTICLE_ORDER, "quantity": 3})

    assert refused.status_code == 422
    assert refused.json()["field"] == "quantity"
    assert "at most 3" in refused.json()["message"]
    assert accepted.status_code == 202
    assert Order.objects.count() == 1


@pytest.mark.parametrize("path", ["/orders", "/orders/sync"])
def test_a_body_over_the_cap_is_refused_on_both_checkouts(client, path):
    body = json.dumps({**ARTICLE_ORDER, "padding": "x" * (16 * 1024)})

    response = client.post(path, data=body, content_type="application/json")

    assert response.status_code == 413
    assert "16384 bytes" in response.json()["message"]
    assert _nothing_created()


def test_an_idempotency_key_of_255_characters_is_taken_and_256_is_refused(client):
    taken = post_order(client, **{"Idempotency-Key": "k" * 255})
    refused = post_order(client, **{"Idempotency-Key": "k" * 256})

    assert taken.status_code == 202
    assert refused.status_code == 422
    assert refused.json()["field"] == "Idempotency-Key"
    assert "at most 255" in refused.json()["message"]
    assert Order.objects.count() == 1


def test_a_reused_key_with_another_body_is_refused_like_stripe_does(client):
    first = post_order(client, **{"Idempotency-Key": "same"})

    other_token = post_order(
        client, {**ARTICLE_ORDER, "paymentToken": "tok_other"}, **{"Idempotency-Key": "same"}
    )
    replay = post_order(client, **{"Idempotency-Key": "same"})

    assert other_token.status_code == 409
    assert replay.status_code == 202 and replay.json()["orderId"] == first.json()["orderId"]
    assert Order.objects.count() == 1 and Event.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ('{"userId": ' + "1" * 5000 + "}", "an integer literal too long to read"),
        ("[" * 5000 + "]" * 5000, "nesting too deep to read"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
@pytest.mark.parametrize("path", ["/orders", "/orders/sync"])
def test_a_body_that_cannot_be_read_as_json_is_400_on_both_checkouts(client, path, body, why):
    response = client.post(path, data=body, content_type="application/json")

    assert response.status_code == 400, why
    assert response.json()["error"] == "malformed_json"
    assert _nothing_created()


@pytest.mark.parametrize("path", ["/orders", "/orders/sync"])
def test_a_token_with_a_trailing_newline_is_refused_on_both_checkouts(client, path):
    body = json.dumps({**ARTICLE_ORDER, "paymentToken": "tok_declined\n"})

    response = client.post(path, data=body, content_type="application/json")

    assert response.status_code == 422
    assert response.json()["field"] == "paymentToken"
    assert _nothing_created()


@pytest.mark.parametrize("quantity", ["\u00b2", "\u0663", "1e3", "", "2" * 40])
def test_a_form_quantity_that_is_not_ascii_digits_is_refused_naming_the_field(client, quantity):
    response = client.post("/orders", data={**ARTICLE_ORDER, "quantity": quantity})

    assert response.status_code == 422
    assert b"quantity " in response.content
    assert _nothing_created()


def test_a_form_and_json_with_the_same_values_are_checked_alike(client):
    form = client.post("/orders", data={**ARTICLE_ORDER, "quantity": "11"})
    as_json = post_order(client, {**ARTICLE_ORDER, "quantity": 11})

    assert form.status_code == as_json.status_code == 422
    assert as_json.json()["message"].encode() in form.content


def test_an_order_id_no_column_can_hold_is_404_as_page_and_as_json(client):
    huge = "9" * 30

    page = client.get(f"/orders/{huge}")
    as_json = client.get(f"/orders/{huge}", headers={"Accept": "application/json"})

    assert page.status_code == 404
    assert as_json.status_code == 404 and as_json.json()["error"] == "not_found"


def test_the_request_response_checkout_asks_a_form_for_its_csrf_token():
    response = Client(enforce_csrf_checks=True).post("/orders/sync", data={**ARTICLE_ORDER})

    assert response.status_code == 403
    assert _nothing_created()


# --- rate limit -----------------------------------------------------------------------------


@pytest.fixture
def limited(settings):
    settings.ORDER_RATE_LIMIT = 3
    # Long, so that a test's few requests never straddle the end of a window.
    settings.ORDER_RATE_WINDOW_SECONDS = 3600
    return settings


def _client_address() -> str:
    """A client address no other test or run has used: counters live in the shared Redis,
    which a test must never flush (the broker's queues are in it too)."""
    return "10.{}.{}.{}".format(*uuid.uuid4().bytes[:3])


def test_a_client_over_its_rate_is_answered_429_with_retry_after(limited):
    client = Client(REMOTE_ADDR=_client_address())
    answers = [post_order(client).status_code for _ in range(4)]

    refused = post_order(client)

    assert answers == [202, 202, 202, 429]
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert "at most 3 orders per 3600 s" in refused.json()["message"]
    assert Order.objects.count() == 3


def test_the_request_response_checkout_shares_the_rate_limit(limited, customer, product):
    client = Client(REMOTE_ADDR=_client_address())
    for _ in range(3):
        post_order(client)

    response = client.post("/orders/sync", data=ARTICLE_ORDER, content_type="application/json")

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert Order.objects.count() == 3


def test_the_rate_is_counted_per_client(limited):
    busy, other = _client_address(), _client_address()
    for _ in range(3):
        post_order(Client(REMOTE_ADDR=busy))

    assert post_order(Client(REMOTE_ADDR=busy)).status_code == 429
    assert post_order(Client(REMOTE_ADDR=other)).status_code == 202


def test_the_rate_limit_lifts_when_its_window_ends(limited):
    limited.ORDER_RATE_LIMIT, limited.ORDER_RATE_WINDOW_SECONDS = 1, 1
    client = Client(REMOTE_ADDR=_client_address())
    # Three quick requests span at most two one-second windows: one of them sees two.
    statuses = [post_order(client).status_code for _ in range(3)]
    assert 429 in statuses

    time.sleep(1.1)

    assert post_order(client).status_code == 202


def test_without_a_setting_a_client_may_place_one_order_a_second():
    # The suite's own processes run with a far higher limit (tests/stack_plugin.py).
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "--no-imports",
            "-c",
            "from django.conf import settings as s; "
            "print(s.ORDER_RATE_LIMIT, s.ORDER_RATE_WINDOW_SECONDS)",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["60", "60"]


def test_orders_are_not_turned_away_when_the_counter_is_unreachable(settings):
    settings.ORDER_RATE_LIMIT = 0
    settings.ORDER_RATE_REDIS_URL = "redis://127.0.0.1:1/0"

    assert post_order(Client(REMOTE_ADDR=_client_address())).status_code == 202


# --- fuzzed events on the consumer side ------------------------------------------------------

_SUBSCRIBED = {
    "OrderCreated": "payment",
    "PaymentProcessed": "orders",
    "PaymentFailed": "inventory",
    "InventoryUpdated": "notification",
    "InventoryRejected": "payment",
    "InventoryReleased": "orders",
    "PaymentRefunded": "orders",
    "OrderShipped": "orders",
    "OrderCancelled": "notification",
}
_VALID_PAYLOADS: dict[str, dict[str, Any]] = {
    "OrderCreated": {
        "userId": 123,
        "productId": 456,
        "quantity": 1,
        "amount": "89.00",
        "paymentToken": "tok_abc123",
        "customerEmail": "ada@example.com",
    },
    "PaymentProcessed": {"paymentId": 1, "amount": "89.00", "tokenLast4": "c123"},
    "PaymentFailed": {"reason": "card declined"},
    "InventoryUpdated": {"productId": 456, "quantity": 1, "stockAfter": 49},
    "InventoryRejected": {"productId": 456, "quantity": 1, "available": 0},
    "InventoryReleased": {"productId": 456, "quantity": 1, "stockAfter": 50},
    "PaymentRefunded": {"amount": "89.00", "reason": "out of stock"},
    "OrderShipped": {"trackingRef": "CL-1"},
    "OrderCancelled": {"reason": "payment declined"},
}
_INBOX = {
    "orders": OrderInbox,
    "payment": PaymentInbox,
    "inventory": InventoryInbox,
    "notification": NotificationInbox,
}
_json_values = st.recursive(
    # What Celery's JSON can carry: huge integers, Infinity and NaN included.
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def _valid(type_: str, order_id: int) -> dict[str, Any]:
    # The payloads above are each type's first version, as the log's oldest events hold them.
    cls = payload_class(type_, 1)
    return {
        "seq": 10**9,
        "eventId": str(uuid.uuid4()),
        "type": type_,
        "version": cls.version,
        "orderId": order_id,
        "occurredAt": timezone.now().isoformat(),
        "producer": cls.producer,
        "causationId": None,
        "payload": dict(_VALID_PAYLOADS[type_]),
    }


@st.composite
def _broken_events(draw: st.DrawFn) -> tuple[str, dict[str, Any], bool]:
    """A valid event with one thing broken: what a buggy or hostile producer could send.

    Returns the service, the event and whether it must be refused. A garbled value may still be
    one the schema reads (pydantic takes "5" for 5, an integer for a timestamp): such an event
    may be handled, but then wholly, as any valid event.
    """
    type_ = draw(st.sampled_from(sorted(_SUBSCRIBED)))
    data = _valid(type_, order_id=draw(st.integers(1, 3)))
    how = draw(
        st.sampled_from(
            [
                "unknown type",
                "drop envelope key",
                "garble envelope key",
                "drop payload key",
                "garble payload key",
                "extra payload key",
                "wrong version",
                "wrong producer",
                "not a dict",
            ]
        )
    )
    if how == "unknown type":
        data["type"] = draw(st.text(max_size=30).filter(lambda t: t not in _SUBSCRIBED))
    elif how == "drop envelope key":
        del data[draw(st.sampled_from(sorted(k for k in data if k != "causationId")))]
    elif how == "garble envelope key":
        key = draw(st.sampled_from(["seq", "eventId", "version", "orderId", "occurredAt"]))
        data[key] = draw(_json_values.filter(lambda v: not isinstance(v, int) or v < 1))
    elif how == "drop payload key":
        del data["payload"][draw(st.sampled_from(sorted(data["payload"])))]
    elif how == "garble payload key":
        key = draw(st.sampled_from(sorted(data["payload"])))
        data["payload"][key] = draw(
            _json_values.filter(lambda v: type(v) is not type(_VALID_PAYLOADS[type_][key]))
        )
    elif how == "extra payload key":
        data["payload"]["injected"] = draw(_json_values)
    elif how == "wrong version":
        data["version"] = draw(st.integers(2, 99))
    elif how == "wrong producer":
        data["producer"] = draw(
            st.sampled_from(["orders", "payment", "inventory", "x"]).filter(
                lambda p: p != data["producer"]
            )
        )
    else:
        data = draw(st.sampled_from([[], "OrderCreated", 42]))  # type: ignore[assignment]
    return _SUBSCRIBED[type_], data, not how.startswith("garble")


def _books() -> tuple[int, ...]:
    return (
        Event.objects.count(),
        Order.objects.exclude(status="INITIATED").count(),
        sum(Stock.objects.values_list("on_hand", flat=True)),
        *(
            model.objects.count()
            for model in (
                OrderInbox,
                PaymentInbox,
                InventoryInbox,
                NotificationInbox,
                Payment,
                Reservation,
                Join,
                SentNotification,
            )
        ),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken=_broken_events())
def test_a_malformed_or_unknown_event_is_dead_lettered_and_nothing_of_it_applied(broken):
    service, data, must_refuse = broken
    if not Order.objects.exists():
        for _ in range(3):
            post_order(Client())
    before, letters = _books(), DeadLetter.objects.count()

    result = deliver.apply(args=(service, data)).get()

    if result == "dead-lettered":
        assert DeadLetter.objects.count() == letters + 1
        assert _books() == before
        letter = DeadLetter.objects.order_by("-id").first()
        assert letter.service == service and letter.error
    else:
        assert not must_refuse, f"{data!r} was {result}"
        assert result in ("handled", "duplicate")
        assert _INBOX[service].objects.filter(event_id=data["eventId"]).exists()


def test_a_well_formed_event_its_service_cannot_apply_is_retried_then_parked_whole(settings):
    settings.DELIVERY_MAX_RETRIES = 2
    data = _valid("PaymentProcessed", order_id=999_999)  # no such order: the handler fails
    before = _books()

    result = deliver.apply(args=("orders", data)).get()

    assert result == "dead-lettered"
    letter = DeadLetter.objects.get(event_id=data["eventId"])
    assert letter.attempts == 3 and "DoesNotExist" in letter.error
    assert _books() == before, "the inbox row of a failed handler must roll back with it"


@pytest.mark.parametrize(
    ("key", "value"),
    [("seq", 2**70), ("orderId", -(2**70)), ("seq", float("inf")), ("orderId", float("nan"))],
)
def test_numbers_no_column_can_hold_are_still_dead_lettered(key, value):
    data = {**_valid("PaymentProcessed", order_id=1), key: value}

    result = deliver.apply(args=("orders", data)).get()

    assert result == "dead-lettered"
    assert DeadLetter.objects.filter(service="orders").count() == 1
