"""Django admin: staff only; orders with their events, read-only and masked."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from orders.models import Product
from tests.helpers import post_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user(
        "staff", password="pw", is_staff=True, is_superuser=True
    )
    client.force_login(user)
    return client


def test_the_admin_is_refused_to_anyone_not_staff(client, customer, product):
    order_id = post_order(client).json()["orderId"]
    get_user_model().objects.create_user("shopper", password="pw")
    client.login(username="shopper", password="pw")

    response = client.get(f"/admin/orders/order/{order_id}/change/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_order_shows_its_events_inline_with_the_token_masked(staff_client, customer, product):
    order_id = post_order(staff_client).json()["orderId"]

    response = staff_client.get(f"/admin/orders/order/{order_id}/change/")

    assert response.status_code == 200
    assert b"OrderCreated" in response.content
    assert b"tok_****c123" in response.content
    assert b"tok_abc123" not in response.content


@pytest.mark.parametrize("query", ["status__exact=INITIATED", "q=Ada", "q=456", "q=Product"])
def test_orders_can_be_filtered_and_searched(staff_client, customer, product, query):
    order_id = post_order(staff_client).json()["orderId"]

    response = staff_client.get(f"/admin/orders/order/?{query}")

    assert response.status_code == 200
    assert f"/admin/orders/order/{order_id}/change/".encode() in response.content


@pytest.mark.parametrize(
    "page",
    [
        "bus/event",
        "payment/payment",
        "inventory/stock",
        "inventory/reservation",
        "notification/sentnotification",
        "bus/deadletter",
    ],
)
def test_every_service_table_has_an_admin_page(staff_client, page):
    assert staff_client.get(f"/admin/{page}/").status_code == 200


@pytest.mark.parametrize("price", ["-5.00", "0.00", "-0.01"])
def test_the_admin_refuses_to_add_a_product_without_a_positive_price(staff_client, price):
    response = staff_client.post(
        "/admin/orders/product/add/", {"name": "Free lunch", "price": price, "description": ""}
    )

    assert response.status_code == 200
    assert b"greater than or equal to 0.01" in response.content
    assert not Product.objects.filter(name="Free lunch").exists()


def test_the_admin_refuses_to_change_a_price_to_a_negative_one(staff_client, product):
    response = staff_client.post(
        f"/admin/orders/product/{product.pk}/change/",
        {"name": "Renamed", "price": "-1.00", "description": ""},
    )

    assert response.status_code == 200
    assert b"greater than or equal to 0.01" in response.content
    product.refresh_from_db()
    assert (product.name, product.price) == ("Product 456", Decimal("89.00"))


def test_the_database_refuses_a_negative_price_written_past_the_form(product):
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(price=Decimal("-1.00"))

    product.refresh_from_db()
    assert product.price == Decimal("89.00")
