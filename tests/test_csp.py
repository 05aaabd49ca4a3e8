"""Every answer carries a Content-Security-Policy that forbids inline script, and no page of ours
needs inline script: the policy breaks nothing (tests/test_browser.py runs the pages under it)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from tests.helpers import post_order

pytestmark = pytest.mark.django_db

# A <script> the browser would run: any but a JSON data block, and without a src of our own.
_SCRIPT = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def _policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {
        directive.split()[0]: directive.split()[1:]
        for directive in (d.strip() for d in header.split(";"))
        if directive
    }


def _pages(client, customer, product) -> list[str]:
    order_id = post_order(client).json()["orderId"]
    return [
        "/",
        "/compare",
        f"/orders/{order_id}",
        "/products",
        "/openapi.json",
        "/healthz",
        "/admin/login/",
        "/orders/999999",
    ]


def test_every_public_answer_forbids_inline_script(client, customer, product):
    for path in _pages(client, customer, product):
        policy = _policy(client.get(path))
        assert policy["script-src"] == ["'self'"], path
        assert policy["default-src"] == ["'self'"], path
        assert policy["frame-ancestors"] == ["'none'"], path
        assert "'unsafe-inline'" not in policy["script-src"]


def test_a_refusal_carries_the_policy_too(client, customer, product):
    response = client.post("/orders", data="{", content_type="application/json")

    assert response.status_code == 400
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def _runs_inline_script(html: str) -> list[str]:
    found = []
    for match in _SCRIPT.finditer(html):
        attributes = match.group(1)
        if "src=" in attributes or 'type="application/json"' in attributes:
            continue
        found.append(match.group(0))
    found += _HANDLER.findall(html)
    return found


def test_no_page_of_the_shop_the_console_or_the_admin_runs_inline_script(client, customer, product):
    staff = get_user_model().objects.create_superuser("root", password="pw")
    pages = _pages(client, customer, product)
    client.force_login(staff)
    pages += [
        "/console/",
        "/console/events/",
        "/console/dead-letters/",
        "/console/topology/",
        "/console/orders/",
        "/admin/",
        "/admin/orders/product/",
        "/admin/orders/product/add/",
        f"/admin/orders/product/{product.pk}/change/",
        "/admin/bus/deadletter/",
    ]

    for path in pages:
        response = client.get(path)
        if "text/html" not in response.headers.get("Content-Type", ""):
            continue
        assert _runs_inline_script(response.content.decode()) == [], path
