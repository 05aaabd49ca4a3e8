"""Staff sign-in is throttled per address and username; the operator is not locked out by others."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-for-tests"


@pytest.fixture
def operator():
    # A name no other run has used: the counters live in the shared Redis, never flushed.
    return get_user_model().objects.create_user(
        f"op-{uuid.uuid4().hex[:8]}", password=PASSWORD, is_staff=True
    )


def _address() -> str:
    return "10.{}.{}.{}".format(*uuid.uuid4().bytes[:3])


def _sign_in(client: Client, username: str, password: str):
    return client.post("/admin/login/", {"username": username, "password": password})


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_after_five_wrong_passwords_even_the_right_one_is_refused(operator, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 5
    client = Client(REMOTE_ADDR=_address())
    wrong = [_sign_in(client, operator.username, "guess").status_code for _ in range(5)]

    refused = _sign_in(client, operator.username, PASSWORD)

    assert wrong == [200] * 5
    assert refused.status_code == 200
    assert b"Too many failed sign-ins" in refused.content
    assert not _signed_in(client)


def test_four_wrong_passwords_still_let_the_right_one_in_and_it_clears_the_count(
    operator, settings
):
    settings.ADMIN_LOGIN_MAX_FAILURES = 5
    client = Client(REMOTE_ADDR=_address())
    for _ in range(4):
        _sign_in(client, operator.username, "guess")

    assert _sign_in(client, operator.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(4):
        assert b"Too many" not in _sign_in(client, operator.username, "guess").content
    assert _sign_in(client, operator.username, PASSWORD).status_code == 302


def test_failures_from_one_address_do_not_lock_the_operator_out_elsewhere(operator, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    stranger = Client(REMOTE_ADDR=_address())
    for _ in range(3):
        _sign_in(stranger, operator.username, "guess")

    elsewhere = Client(REMOTE_ADDR=_address())

    assert _sign_in(elsewhere, operator.username, PASSWORD).status_code == 302
    assert _signed_in(elsewhere)


def test_sign_in_is_not_throttled_when_the_counter_is_unreachable(operator, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 1
    settings.ORDER_RATE_REDIS_URL = "redis://127.0.0.1:1/0"
    client = Client(REMOTE_ADDR=_address())
    _sign_in(client, operator.username, "guess")

    assert _sign_in(client, operator.username, PASSWORD).status_code == 302
