"""GET /openapi.json: generated from the contract's models, and true of what the server answers."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from django.test import Client

from services.bus.registry import queues, subscribers
from services.bus.schemas import TOKEN_PATTERN, event_types
from tests.helpers import ARTICLE_ORDER, post_order

pytestmark = pytest.mark.django_db

CONTRACT_PATHS = {
    "/orders",
    "/orders/sync",
    "/orders/{orderId}",
    "/products",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/control/services/{name}/stop",
    "/control/services/{name}/start",
    "/control/queues",
    "/control/levers",
    "/control/faults",
    "/control/faults/{faultId}",
    "/control/ledger",
}


@pytest.fixture
def document(client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _holds(document: dict[str, Any], component: str, body: Any) -> bool:
    """Whether ``body`` is valid against a component, its references resolved in the document."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return jsonschema_rs.validator_for(schema).is_valid(body)


def test_it_lists_every_json_endpoint_of_the_contract(document):
    assert set(document["paths"]) == CONTRACT_PATHS


def test_the_order_request_carries_the_token_rule_and_the_live_quantity_limit(client, settings):
    settings.ORDER_MAX_QUANTITY = 7

    schema = client.get("/openapi.json").json()["components"]["schemas"]["OrderRequest"]

    assert schema["properties"]["paymentToken"]["pattern"] == TOKEN_PATTERN.pattern
    assert schema["properties"]["quantity"]["maximum"] == 7
    assert set(schema["required"]) == {"userId", "productId", "quantity", "paymentToken"}


def test_an_events_payload_is_one_of_the_event_schemas_not_any_object(document):
    schemas = document["components"]["schemas"]
    payload = schemas["Envelope"]["properties"]["payload"]

    refs = {ref["$ref"].rsplit("/", 1)[1] for ref in payload["anyOf"]}
    # Every type's newest schema, and each older version the log may still hold.
    assert refs == set(event_types()) | {"OrderCreated.v1"}
    assert schemas["Envelope"]["properties"]["type"]["enum"] == list(event_types())
    assert schemas["OrderCreated"]["x-producer"] == "orders"
    assert (schemas["OrderCreated"]["x-version"], schemas["OrderCreated.v1"]["x-version"]) == (2, 1)
    assert schemas["OrderDetail"]["properties"]["events"]["items"] == {
        "$ref": "#/components/schemas/Envelope"
    }


def test_the_statuses_are_the_order_models(document):
    assert document["components"]["schemas"]["OrderStatus"]["enum"] == [
        "INITIATED",
        "CONFIRMED",
        "SHIPPED",
        "CANCELLED",
        "PENDING_PAYMENT",
    ]


def test_the_control_endpoints_name_the_registrys_services_and_queues(document):
    schemas = document["components"]["schemas"]
    stop = document["paths"]["/control/services/{name}/stop"]["post"]

    assert stop["parameters"][0]["schema"]["enum"] == list(subscribers())
    assert schemas["QueueDepths"]["required"] == queues()


def test_what_the_server_answers_holds_to_the_document(client, document, customer, product):
    accepted = post_order(client)
    order_id = accepted.json()["orderId"]
    detail = client.get(f"/orders/{order_id}", headers={"Accept": "application/json"})
    synced = client.post("/orders/sync", data=ARTICLE_ORDER, content_type="application/json")
    refused = post_order(client, {**ARTICLE_ORDER, "quantity": 0})
    missing = client.get("/orders/4242", headers={"Accept": "application/json"})

    assert _holds(document, "OrderAccepted", accepted.json())
    assert _holds(document, "OrderDetail", detail.json())
    assert _holds(document, "OrderPlacedSync", synced.json())
    assert _holds(document, "ErrorBody", refused.json())
    assert _holds(document, "ErrorBody", missing.json())
    assert _holds(document, "Products", client.get("/products").json())


def test_a_body_the_document_refuses_is_refused_by_the_server(client, document, customer, product):
    body = {**ARTICLE_ORDER, "paymentToken": "tok_declined\n"}

    assert not _holds(document, "OrderRequest", body)
    assert post_order(client, body).status_code == 422


def test_the_staff_queue_depths_hold_to_the_document(admin_client, document):
    response = admin_client.get("/control/queues")

    assert response.status_code == 200
    assert _holds(document, "QueueDepths", response.json())
    assert not _holds(document, "QueueDepths", {"payment": 1})


def test_the_staff_endpoints_are_refused_to_anyone_else(document):
    response = Client().get("/control/queues")

    assert response.status_code == 403
    assert _holds(document, "ErrorBody", response.json())


@pytest.mark.parametrize("path", ["/healthz", "/products", "/openapi.json", "/orders/1"])
def test_a_read_only_endpoint_answers_another_method_with_405_not_a_csrf_403(path):
    response = Client(enforce_csrf_checks=True).post(path)

    assert response.status_code == 405
