"""The levers: GET and POST /control/levers, who may pull them, the guard rails, and the bus's
policy they make (read through a short per-process cache)."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from checkout_site.console import levers
from checkout_site.console.levers import levers_forget, levers_unsafe
from checkout_site.console.models import Fault, LeverChange
from services.bus import hooks
from services.bus.models import Event
from services.bus.registry import (
    subscribers,
    subscribers_of,
    subscriptions,
    subscriptions_default,
)
from tests.helpers import user_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _unsafe_levers_allowed(settings):
    """Tests run with DEBUG off; the guard rail has tests of its own below."""
    settings.CHECKOUT_UNSAFE_LEVERS = True


def _pull(client: Client, body: dict, *, csrf: bool = True):
    headers = {"X-CSRFToken": client.cookies["csrftoken"].value} if csrf else {}
    return client.post(
        "/control/levers", data=body, content_type="application/json", headers=headers
    )


def test_the_document_has_all_four_levers_at_their_defaults(staff_client):
    doc = staff_client.get("/control/levers").json()

    assert set(doc) == {"idempotency", "delivery", "schemas", "subscriptions"}
    assert doc["idempotency"] == {name: "on" for name in subscribers()}
    assert doc["delivery"] == {name: "at-least-once" for name in subscribers()}
    assert doc["schemas"] == {"OrderCreated": 1}
    assert doc["subscriptions"]["payment"] == ["InventoryRejected", "OrderCreated"]


def test_a_pull_answers_the_whole_document_and_is_recorded_with_who(staff_client):
    response = _pull(staff_client, {"lever": "idempotency", "service": "payment", "value": "off"})

    assert response.status_code == 200
    assert response.json()["idempotency"]["payment"] == "off"
    assert response.json()["idempotency"]["inventory"] == "on"
    change = LeverChange.objects.get()
    assert (change.label(), change.changed_by) == ("idempotency off at payment", "operator")
    assert levers_unsafe() == ["idempotency off at payment"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lever": "speed", "service": "payment", "value": "off"}, "lever"),
        ({"service": "payment", "value": "off"}, "lever"),
        ({"lever": "idempotency", "service": "shipping", "value": "off"}, "service"),
        ({"lever": "idempotency", "value": "off"}, "service"),
        ({"lever": "idempotency", "service": "payment", "value": "sometimes"}, "value"),
        ({"lever": "delivery", "service": "payment", "value": "off"}, "value"),
        ({"lever": "delivery", "service": "payment", "value": ["at-most-once"]}, "value"),
    ],
)
def test_an_unknown_lever_service_or_value_is_a_422_naming_it_and_changes_nothing(
    staff_client, body, field
):
    response = _pull(staff_client, body)

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert not LeverChange.objects.exists()


def test_the_schema_lever_switches_the_producers_version_and_back(staff_client):
    assert hooks.schema_version_for("OrderCreated") == 1

    response = _pull(staff_client, {"lever": "schema", "eventType": "OrderCreated", "version": 2})

    assert response.status_code == 200
    assert response.json()["schemas"] == {"OrderCreated": 2}
    assert hooks.schema_version_for("OrderCreated") == 2
    change = LeverChange.objects.get()
    assert (change.lever, change.service, change.value) == ("schema", "OrderCreated", "2")
    assert change.label() == "schema OrderCreated v2"
    # A new version gives up no guarantee: no banner.
    assert levers_unsafe() == []

    back = _pull(staff_client, {"lever": "schema", "eventType": "OrderCreated", "version": 1})

    assert back.json()["schemas"] == {"OrderCreated": 1}
    assert hooks.schema_version_for("OrderCreated") == 1
    assert staff_client.get("/control/levers").json()["schemas"] == {"OrderCreated": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lever": "schema", "version": 2}, "eventType"),
        ({"lever": "schema", "eventType": "OrderTeleported", "version": 2}, "eventType"),
        # One version only: there is nothing to switch between.
        ({"lever": "schema", "eventType": "PaymentFailed", "version": 1}, "eventType"),
        ({"lever": "schema", "eventType": "OrderCreated"}, "version"),
        ({"lever": "schema", "eventType": "OrderCreated", "version": 3}, "version"),
        ({"lever": "schema", "eventType": "OrderCreated", "version": 0}, "version"),
        ({"lever": "schema", "eventType": "OrderCreated", "version": "2"}, "version"),
        ({"lever": "schema", "eventType": "OrderCreated", "version": True}, "version"),
        ({"lever": "schema", "eventType": ["OrderCreated"], "version": 2}, "eventType"),
    ],
)
def test_an_unknown_event_type_or_version_is_a_422_naming_it(staff_client, body, field):
    response = _pull(staff_client, body)

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert not LeverChange.objects.exists()
    assert hooks.schema_version_for("OrderCreated") == 1


def test_without_debug_the_schema_lever_still_switches(staff_client, settings):
    settings.DEBUG = False
    settings.CHECKOUT_UNSAFE_LEVERS = False

    response = _pull(staff_client, {"lever": "schema", "eventType": "OrderCreated", "version": 2})

    assert response.status_code == 200
    assert response.json()["schemas"] == {"OrderCreated": 2}


def test_malformed_json_is_a_400(staff_client):
    response = staff_client.post(
        "/control/levers",
        data="{nope",
        content_type="application/json",
        headers={"X-CSRFToken": staff_client.cookies["csrftoken"].value},
    )

    assert response.status_code == 400
    assert not LeverChange.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"lever": "idempotency", "service": "payment", "value": "off"},
        {"lever": "idempotency", "service": "payment", "value": "constraint-only"},
        {"lever": "delivery", "service": "inventory", "value": "at-most-once"},
    ],
)
def test_without_debug_a_lever_that_gives_up_a_guarantee_is_refused(staff_client, settings, body):
    settings.DEBUG = False
    settings.CHECKOUT_UNSAFE_LEVERS = False

    response = _pull(staff_client, body)

    assert response.status_code == 409
    assert response.json()["error"] == "unsafe_lever"
    assert not LeverChange.objects.exists()


def test_without_debug_the_safe_value_may_still_be_set(staff_client, settings):
    settings.DEBUG = False
    settings.CHECKOUT_UNSAFE_LEVERS = False

    response = _pull(
        staff_client, {"lever": "delivery", "service": "payment", "value": "at-least-once"}
    )

    assert response.status_code == 200


def test_checkout_unsafe_levers_lets_them_through_without_debug(staff_client, settings):
    settings.DEBUG = False
    settings.CHECKOUT_UNSAFE_LEVERS = True

    response = _pull(
        staff_client, {"lever": "delivery", "service": "payment", "value": "at-most-once"}
    )

    assert response.status_code == 200
    assert response.json()["delivery"]["payment"] == "at-most-once"


def test_anonymous_pulls_are_refused_and_change_nothing(client):
    response = client.post(
        "/control/levers",
        data={"lever": "idempotency", "service": "payment", "value": "off"},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert client.get("/control/levers").status_code == 403
    assert not LeverChange.objects.exists()


def test_a_customer_who_is_not_staff_is_refused():
    client = Client()
    client.force_login(user_make("shopper", staff=False))

    response = _pull_plain(client)

    assert response.status_code == 403
    assert not LeverChange.objects.exists()


def _pull_plain(client: Client):
    return client.post(
        "/control/levers",
        data={"lever": "idempotency", "service": "payment", "value": "off"},
        content_type="application/json",
    )


def test_staff_without_the_csrf_token_is_refused(staff_client):
    response = _pull(
        staff_client, {"lever": "idempotency", "service": "payment", "value": "off"}, csrf=False
    )

    assert response.status_code == 403
    assert not LeverChange.objects.exists()


def test_the_policy_follows_the_newest_row_of_each_lever():
    LeverChange.objects.create(lever="idempotency", service="payment", value="off")
    LeverChange.objects.create(lever="idempotency", service="payment", value="constraint-only")
    LeverChange.objects.create(lever="delivery", service="payment", value="at-most-once")

    policy = hooks.policy_for("payment")

    assert (policy.inbox, policy.effect_checked, policy.effect_unique) == (False, False, True)
    assert policy.ack == "early"
    assert "idempotency constraint-only at payment" in policy.note
    assert hooks.policy_for("inventory") == hooks.DEFAULT_POLICY


def test_the_policy_is_cached_for_a_second_then_read_again(monkeypatch):
    assert hooks.policy_for("payment").inbox
    LeverChange.objects.create(lever="idempotency", service="payment", value="off")

    assert hooks.policy_for("payment").inbox, "read again before the cache ran out"

    monkeypatch.setattr(levers, "CACHE_SECONDS", 0.05)
    time.sleep(0.06)
    assert not hooks.policy_for("payment").inbox
    assert not hooks.policy_for("payment").effect_unique


def test_reset_puts_every_lever_back_and_switches_every_fault_off(staff_client):
    _pull(staff_client, {"lever": "idempotency", "service": "payment", "value": "off"})
    _pull(staff_client, {"lever": "delivery", "service": "inventory", "value": "at-most-once"})
    _pull(staff_client, {"lever": "schema", "eventType": "OrderCreated", "version": 2})
    Fault.objects.create(service="payment", kind="duplicate")

    response = staff_client.post(
        "/console/reset", headers={"X-CSRFToken": staff_client.cookies["csrftoken"].value}
    )

    assert response.status_code == 302
    levers_forget()
    assert levers_unsafe() == []
    assert hooks.schema_version_for("OrderCreated") == 1
    assert not Fault.objects.exists()
    # The reset is part of the record, not an erasure of it.
    assert LeverChange.objects.count() == 6
    assert LeverChange.objects.first().changed_by == "operator"


def test_reset_without_the_csrf_token_changes_nothing(staff_client):
    _pull(staff_client, {"lever": "idempotency", "service": "payment", "value": "off"})

    response = staff_client.post("/console/reset")

    assert response.status_code == 403
    levers_forget()
    assert levers_unsafe() == ["idempotency off at payment"]


def test_the_console_shows_the_schema_lever_at_the_version_emitted(staff_client):
    _pull(staff_client, {"lever": "schema", "eventType": "OrderCreated", "version": 2})

    html = staff_client.get("/console/").content.decode()

    assert 'data-schema-lever="OrderCreated"' in html
    assert '<option value="2" selected>v2</option>' in html
    assert '<option value="1">v1</option>' in html
    assert "schema OrderCreated v2" in html


# --- The subscription lever -----------------------------------------------------------------


def _subscribe(client: Client, value: str = "on", **more):
    body = {"lever": "subscription", "service": "loyalty", "eventType": "OrderShipped"}
    return _pull(client, {**body, "value": value, **more})


def test_loyalty_ships_subscribed_to_nothing(staff_client):
    doc = staff_client.get("/control/levers").json()

    assert doc["subscriptions"]["loyalty"] == []
    assert doc["subscriptions"]["notification"] == [
        "InventoryUpdated",
        "OrderCancelled",
        "PaymentProcessed",
    ]
    assert "loyalty" not in subscribers_of("OrderShipped")


def test_subscribing_loyalty_is_recorded_and_the_publisher_sends_it_orders_shipped(
    staff_client, monkeypatch
):
    replays = []
    monkeypatch.setattr(levers, "events_replay", lambda **kw: replays.append(kw))

    response = _subscribe(staff_client)

    assert response.status_code == 200
    assert response.json()["subscriptions"]["loyalty"] == ["OrderShipped"]
    assert subscribers_of("OrderShipped") == ("orders", "loyalty")
    change = LeverChange.objects.get()
    assert (change.label(), change.changed_by) == (
        "subscription on at loyalty for OrderShipped",
        "operator",
    )
    assert replays == []
    assert levers_unsafe() == []


def test_a_subscription_without_replay_starts_at_the_end_of_the_log(staff_client):
    last = Event.objects.create(
        type="OrderShipped",
        version=1,
        order_id=1,
        occurred_at="2026-12-01T12:00:00Z",
        producer="notification",
        payload={"trackingRef": "CL-1"},
    )

    _subscribe(staff_client)

    assert LeverChange.objects.get().since_seq == last.seq
    assert subscriptions()["loyalty"] == {"OrderShipped": last.seq}


def test_a_subscription_with_replay_sends_the_log_so_far_and_counts_it_all(
    staff_client, monkeypatch
):
    replays = []
    monkeypatch.setattr(levers, "events_replay", lambda **kw: replays.append(kw))
    last = Event.objects.create(
        type="OrderShipped",
        version=1,
        order_id=1,
        occurred_at="2026-12-01T12:00:00Z",
        producer="notification",
        payload={"trackingRef": "CL-1"},
    )

    _subscribe(staff_client, replay=True)

    assert replays == [
        {"service": "loyalty", "event_type": "OrderShipped", "through_seq": last.seq}
    ]
    assert subscriptions()["loyalty"] == {"OrderShipped": 0}
    assert LeverChange.objects.get().label() == (
        "subscription on at loyalty for OrderShipped, replayed from the log"
    )


def test_unsubscribing_stops_the_publisher_sending(staff_client):
    _subscribe(staff_client)

    response = _subscribe(staff_client, "off")

    assert response.json()["subscriptions"]["loyalty"] == []
    assert subscribers_of("OrderShipped") == ("orders",)
    assert LeverChange.objects.count() == 2


def test_a_core_service_can_be_unsubscribed_from_one_type(staff_client):
    body = {"lever": "subscription", "service": "notification", "eventType": "OrderCancelled"}

    response = _pull(staff_client, {**body, "value": "off"})

    assert "OrderCancelled" not in response.json()["subscriptions"]["notification"]
    assert subscribers_of("OrderCancelled") == ()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"service": "shipping"}, "service"),
        ({"service": None}, "service"),
        ({"eventType": "OrderCreated"}, "eventType"),
        ({"eventType": "PointsAwarded"}, "eventType"),
        ({"eventType": None}, "eventType"),
        ({"eventType": ["OrderShipped"]}, "eventType"),
        ({"value": "maybe"}, "value"),
        ({"value": None}, "value"),
        ({"replay": "yes"}, "replay"),
        ({"value": "off", "replay": True}, "replay"),
    ],
)
def test_a_subscription_outside_what_the_code_handles_is_a_422_naming_it(
    staff_client, change, field
):
    body = {"lever": "subscription", "service": "loyalty", "eventType": "OrderShipped"}
    body = {**body, "value": "on", **change}

    response = _pull(staff_client, {k: v for k, v in body.items() if v is not None})

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert not LeverChange.objects.exists()
    assert staff_client.get("/control/levers").json()["subscriptions"]["loyalty"] == []


def test_the_subscriptions_are_read_once_a_second_per_process(db):
    first = levers.subscriptions_state()
    LeverChange.objects.create(
        lever="subscription", service="loyalty", value="on", event_type="OrderShipped", since_seq=0
    )

    assert levers.subscriptions_state() is first
    assert "loyalty" not in subscribers_of("OrderShipped")
    levers_forget()
    assert levers.subscriptions_state()["loyalty"] == {"OrderShipped": 0}
    assert "loyalty" in subscribers_of("OrderShipped")


def test_the_reset_puts_every_subscription_back_to_its_default(staff_client):
    _subscribe(staff_client)
    _pull(
        staff_client,
        {
            "lever": "subscription",
            "service": "payment",
            "eventType": "OrderCreated",
            "value": "off",
        },
    )

    reset = levers.levers_reset(by="operator")

    assert sorted(reset) == [
        "subscription off at loyalty for OrderShipped",
        "subscription on at payment for OrderCreated",
    ]
    assert levers.subscriptions_state() == subscriptions_default()
