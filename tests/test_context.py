"""Every page says which guarantees the levers give up now (console/context.py, base.html)."""

from __future__ import annotations

import pytest

from checkout_site.console.levers import LeverWish, lever_set, levers_forget

pytestmark = pytest.mark.django_db


def test_the_banner_is_hidden_while_every_lever_is_at_its_default(client):
    page = client.get("/").content.decode()

    assert 'data-levers-banner role="status" hidden' in page
    assert client.get("/services/status").json()["unsafe"] == []


def test_every_page_shows_the_banner_while_a_guarantee_is_given_up(client, customer, product):
    lever_set(LeverWish(lever="delivery", service="payment", value="at-most-once"))
    lever_set(LeverWish(lever="idempotency", service="inventory", value="off"))
    levers_forget()

    for path in ("/", "/compare"):
        page = client.get(path).content.decode()
        assert 'data-levers-banner role="status">' in page, path
        assert "idempotency off at inventory; delivery at-most-once at payment" in page, path
    assert client.get("/services/status").json()["unsafe"] == [
        "idempotency off at inventory",
        "delivery at-most-once at payment",
    ]
