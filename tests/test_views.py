"""POST /orders, GET /orders/<id> and GET /products: answers and errors as the contract says."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from orders.models import Order
from services.bus.models import Event
from tests.helpers import ARTICLE_ORDER, post_order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalog(customer, product):
    return customer, product


def _nothing_created() -> bool:
    return Order.objects.count() == 0 and Event.objects.count() == 0


def test_it_accepts_the_articles_order_with_202_and_stores_order_and_event_together(client):
    response = post_order(client)

    assert response.status_code == 202
    order = Order.objects.get()
    assert response.json() == {
        "orderId": order.pk,
        "status": "INITIATED",
        "message": "Order received. Processing...",
    }
    assert response["Location"] == f"/orders/{order.pk}"
    event = Event.objects.get()
    assert (event.type, event.order_id, event.producer) == ("OrderCreated", order.pk, "orders")
    assert event.payload["amount"] == "89.00"


def test_it_answers_400_to_malformed_json_and_creates_nothing(client):
    response = client.post("/orders", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    assert _nothing_created()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -2}, "quantity"),
        ({"quantity": "1"}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": 11}, "quantity"),
        ({"userId": 999}, "userId"),
        ({"productId": 999}, "productId"),
        ({"productId": None}, "productId"),
        ({"paymentToken": "card_4242"}, "paymentToken"),
        ({"paymentToken": ""}, "paymentToken"),
        ({"paymentToken": 12}, "paymentToken"),
    ],
)
def test_it_answers_422_naming_the_bad_field_and_creates_nothing(client, change, field):
    response = post_order(client, {**ARTICLE_ORDER, **change})

    assert response.status_code == 422
    assert response.json()["field"] == field
    assert field in response.json()["message"]
    assert _nothing_created()


def test_a_missing_field_is_named(client):
    body = {k: v for k, v in ARTICLE_ORDER.items() if k != "paymentToken"}

    response = post_order(client, body)

    assert response.status_code == 422
    assert response.json()["errors"] == {"paymentToken": "paymentToken is required"}


def test_the_quantity_error_names_the_limit(client):
    response = post_order(client, {**ARTICLE_ORDER, "quantity": 500})

    assert "at most 10" in response.json()["message"]


def test_a_json_array_is_refused_as_not_an_object(client):
    response = client.post("/orders", data="[1, 2]", content_type="application/json")

    assert response.status_code == 422
    assert response.json()["field"] == "body"
    assert _nothing_created()


def test_a_body_over_16_kib_is_refused_with_413(client):
    body = json.dumps({**ARTICLE_ORDER, "padding": "x" * 17000})

    response = client.post("/orders", data=body, content_type="application/json")

    assert response.status_code == 413
    assert _nothing_created()


def test_an_idempotency_key_reused_for_another_order_is_refused(client):
    post_order(client, **{"Idempotency-Key": "k1"})

    response = post_order(client, {**ARTICLE_ORDER, "quantity": 2}, **{"Idempotency-Key": "k1"})

    assert response.status_code == 409
    assert response.json()["field"] == "Idempotency-Key"
    assert Order.objects.count() == 1


def test_an_overlong_idempotency_key_is_refused(client):
    response = post_order(client, **{"Idempotency-Key": "k" * 256})

    assert response.status_code == 422
    assert _nothing_created()


def test_a_form_post_answers_303_to_the_order_page(client):
    response = client.post("/orders", data={**ARTICLE_ORDER})

    order = Order.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/orders/{order.pk}"


def test_a_form_post_without_its_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)

    response = client.post("/orders", data={**ARTICLE_ORDER})

    assert response.status_code == 403
    assert _nothing_created()


def test_a_form_post_with_a_bad_field_shows_the_form_again_with_the_error(client):
    response = client.post("/orders", data={**ARTICLE_ORDER, "quantity": "lots"})

    assert response.status_code == 422
    assert b"quantity must be a positive integer" in response.content
    assert _nothing_created()


def test_json_sent_as_a_form_by_curl_is_read_as_json(client):
    body = json.dumps(ARTICLE_ORDER)

    response = client.post("/orders", data=body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 202


def test_get_order_as_json_lists_its_events_with_the_token_masked(client):
    order_id = post_order(client).json()["orderId"]

    body = client.get(f"/orders/{order_id}", headers={"Accept": "application/json"}).json()

    assert body["orderId"] == order_id
    assert body["status"] == "INITIATED"
    [event] = body["events"]
    assert set(event) >= {
        "seq",
        "eventId",
        "type",
        "version",
        "orderId",
        "occurredAt",
        "producer",
        "causationId",
        "payload",
    }
    assert event["payload"]["paymentToken"] == "tok_****c123"
    assert "tok_abc123" not in json.dumps(body)


def test_get_order_answers_404_for_an_unknown_order(client):
    response = client.get("/orders/4242", headers={"Accept": "application/json"})

    assert response.status_code == 404


def test_a_json_client_gets_its_404_as_json(client):
    response = client.get("/orders/4242", headers={"Accept": "application/json"})

    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "not_found", "message": "no order 4242"}


def test_get_order_as_html_never_shows_the_whole_token(client):
    order_id = post_order(client).json()["orderId"]

    response = client.get(f"/orders/{order_id}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"tok_abc123" not in response.content


def test_products_lists_id_name_price_and_stock(client):
    body = client.get("/products").json()

    assert body == [{"id": 456, "name": "Product 456", "price": "89.00", "stock": 50}]


def test_get_on_orders_is_not_allowed(client):
    assert client.get("/orders").status_code == 405
