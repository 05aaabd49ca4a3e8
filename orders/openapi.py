"""The HTTP API's OpenAPI 3 schema (GET /openapi.json), written by hand from CONTRACT.md.

It describes the JSON API: placing an order (event-driven or request-response), reading an
order with its events, and the catalog. Limits are the live settings, so the schema never
promises what the server would refuse. schemathesis checks the server against it in CI
(tests/ci/schemathesis.sh).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from orders.views import IDEMPOTENCY_KEY_MAX

_TOKEN = r"^tok_[A-Za-z0-9_]{1,64}$"
_STATUSES = ["INITIATED", "CONFIRMED", "SHIPPED", "CANCELLED", "PENDING_PAYMENT"]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


def openapi_schema() -> dict[str, Any]:
    order_request = {
        "type": "object",
        "required": ["userId", "productId", "quantity", "paymentToken"],
        "properties": {
            "userId": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "example": 123},
            "productId": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "example": 456},
            "quantity": {
                "type": "integer",
                "minimum": 1,
                "maximum": settings.ORDER_MAX_QUANTITY,
                "example": 1,
            },
            "paymentToken": {"type": "string", "pattern": _TOKEN, "example": "tok_abc123"},
        },
        "additionalProperties": True,
    }
    body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrderRequest"}}},
    }
    bad_input = {
        "400": _error("The body is not valid JSON."),
        "413": _error(f"The body is larger than {settings.ORDER_BODY_MAX_BYTES} bytes."),
        "422": _error("A field is missing or wrong; `field` names it."),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Checkout Live",
            "version": "1.0.0",
            "description": "An event-driven checkout, next to the request-response one.",
        },
        "paths": {
            "/orders": {
                "post": {
                    "operationId": "orders_create",
                    "summary": "Place an order; the events take it from there.",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
                            "description": "The same key again returns the same order; "
                            "an empty key is no key.",
                        }
                    ],
                    "requestBody": body,
                    "responses": {
                        "202": {
                            **_json(
                                {"$ref": "#/components/schemas/OrderAccepted"},
                                "Accepted; the order's events follow.",
                            ),
                            "headers": {
                                "Location": {
                                    "schema": {"type": "string"},
                                    "description": "The order.",
                                }
                            },
                        },
                        **bad_input,
                        "409": _error("The Idempotency-Key was used for a different order."),
                        "429": {
                            **_error("Too many orders from this client; see Retry-After."),
                            "headers": {
                                "Retry-After": {
                                    "schema": {"type": "integer", "minimum": 1},
                                    "description": "Seconds until the client may order again.",
                                }
                            },
                        },
                    },
                }
            },
            "/orders/sync": {
                "post": {
                    "operationId": "orders_create_sync",
                    "summary": "The request-response checkout: waits for every service.",
                    "requestBody": body,
                    "responses": {
                        "201": _json(
                            {"$ref": "#/components/schemas/OrderPlacedSync"},
                            "Placed; shipped or cancelled already.",
                        ),
                        **bad_input,
                        "502": _error(
                            "A downstream service failed (made to fail from the console); the "
                            "chain stopped there, as a request-response checkout does."
                        ),
                    },
                }
            },
            "/orders/{orderId}": {
                "get": {
                    "operationId": "order_detail",
                    "summary": "One order with its events, in order.",
                    "parameters": [
                        {
                            "name": "orderId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                        },
                        {
                            "name": "Accept",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                            "description": "application/json for JSON; a browser gets HTML.",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The order: JSON when asked for, else its page.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Order"}
                                },
                                "text/html": {"schema": {"type": "string"}},
                            },
                        },
                        "404": {"description": "No such order."},
                    },
                }
            },
            "/products": {
                "get": {
                    "operationId": "products_list",
                    "summary": "The catalog with live stock.",
                    "responses": {
                        "200": _json(
                            {"type": "array", "items": {"$ref": "#/components/schemas/Product"}},
                            "Every product.",
                        )
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "OrderRequest": order_request,
                "OrderAccepted": {
                    "type": "object",
                    "required": ["orderId", "status", "message"],
                    "properties": {
                        "orderId": {"type": "integer", "minimum": 1},
                        "status": {"type": "string", "enum": _STATUSES},
                        "message": {"type": "string"},
                    },
                },
                "OrderPlacedSync": {
                    "type": "object",
                    "required": ["orderId", "status", "message", "hops", "totalMs"],
                    "properties": {
                        "orderId": {"type": "integer", "minimum": 1},
                        "status": {"type": "string", "enum": ["SHIPPED", "CANCELLED"]},
                        "message": {"type": "string"},
                        "hops": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["service", "ms", "outcome"],
                                "properties": {
                                    "service": {"type": "string"},
                                    "ms": {"type": "number", "minimum": 0},
                                    "outcome": {"type": "string"},
                                },
                            },
                        },
                        "totalMs": {"type": "number", "minimum": 0},
                    },
                },
                "Order": {
                    "type": "object",
                    "required": ["orderId", "status", "events"],
                    "properties": {
                        "orderId": {"type": "integer"},
                        "status": {"type": "string", "enum": _STATUSES},
                        "mode": {"type": "string", "enum": ["events", "sync"]},
                        "events": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Event"},
                        },
                    },
                },
                "Event": {
                    "type": "object",
                    "required": [
                        "seq",
                        "eventId",
                        "type",
                        "version",
                        "orderId",
                        "occurredAt",
                        "producer",
                        "causationId",
                        "payload",
                    ],
                    "properties": {
                        "seq": {"type": "integer", "minimum": 1},
                        "eventId": {"type": "string", "format": "uuid"},
                        "type": {"type": "string"},
                        "version": {"type": "integer", "minimum": 1},
                        "orderId": {"type": "integer", "minimum": 1},
                        "occurredAt": {"type": "string", "format": "date-time"},
                        "producer": {"type": "string"},
                        "causationId": {"type": "string", "format": "uuid", "nullable": True},
                        "payload": {"type": "object"},
                    },
                },
                "Product": {
                    "type": "object",
                    "required": ["id", "name", "price", "stock"],
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string"},
                        "price": {"type": "string", "pattern": r"^\d+\.\d{2}$"},
                        "stock": {"type": "integer", "minimum": 0},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
            }
        },
    }
