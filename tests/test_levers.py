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
from services.bus.registry import subscribers
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


@pytest.mark.parametrize(
    "body",
    [
        {"lever": "schema", "eventType": "OrderCreated", "version": 2},
        {"lever": "subscription", "service": "orders", "eventType": "OrderShipped", "value": "on"},
    ],
)
def test_the_levers_not_switchable_yet_say_so(staff_client, body):
    response = _pull(staff_client, body)

    assert response.status_code == 422
    assert response.json()["field"] == "lever"
    assert "not switchable yet" in response.json()["message"]


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
    Fault.objects.create(service="payment", kind="duplicate")

    response = staff_client.post(
        "/console/reset", headers={"X-CSRFToken": staff_client.cookies["csrftoken"].value}
    )

    assert response.status_code == 302
    levers_forget()
    assert levers_unsafe() == []
    assert not Fault.objects.exists()
    # The reset is part of the record, not an erasure of it.
    assert LeverChange.objects.count() == 4
    assert LeverChange.objects.first().changed_by == "operator"


def test_reset_without_the_csrf_token_changes_nothing(staff_client):
    _pull(staff_client, {"lever": "idempotency", "service": "payment", "value": "off"})

    response = staff_client.post("/console/reset")

    assert response.status_code == 403
    levers_forget()
    assert levers_unsafe() == ["idempotency off at payment"]
