"""The OpenAPI 3.1 document of the HTTP API (GET /openapi.json), generated from the contract.

The bodies are the pydantic models of orders/contract.py; an event is the bus's ``Envelope``,
its payload one of the event schemas of ``services.bus.schemas.json_schemas()``; the service and
queue names of the control endpoints are the registry's. Limits are the live settings, so the
document never promises what the server would refuse. schemathesis checks the server against it
(tests/ci/schemathesis.sh).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from orders import contract
from services.bus.registry import queues, subscribers
from services.bus.schemas import Envelope, event_types, json_schemas

_REF = "#/components/schemas/{model}"
_MODELS: list[type[BaseModel]] = [
    contract.OrderRequest,
    contract.OrderAccepted,
    contract.OrderPlacedSync,
    contract.SyncFailed,
    contract.OrderDetail,
    contract.Products,
    contract.ErrorBody,
    contract.ServiceSwitched,
    contract.QueueDepths,
    contract.Readiness,
    contract.LeverRequest,
    contract.LeversDocument,
    contract.FaultRequest,
    contract.FaultItem,
    contract.Faults,
    contract.Ledger,
]
# Request bodies: their schemas describe what is taken, not what is answered.
_REQUESTS = {contract.OrderRequest, contract.LeverRequest, contract.FaultRequest}


def _ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return _json(_ref(contract.ErrorBody), description, **extra)


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _components() -> dict[str, Any]:
    """Every model's schema, the event payloads and the registry's names, under one roof."""
    _, top = models_json_schema(
        [(model, "validation" if model in _REQUESTS else "serialization") for model in _MODELS],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = top["$defs"]
    payloads = json_schemas()
    schemas.update(payloads)
    # The envelope's payload is one of the event payloads of any version still defined (the log
    # keeps what was written), not any object; several payloads may share a shape (a lone
    # ``reason``), hence anyOf rather than oneOf.
    envelope = schemas[Envelope.__name__]
    envelope["properties"]["payload"] = {
        "anyOf": [_ref(name) for name in payloads],
        "description": "The payload of the event's type; a payment token is masked.",
    }
    envelope["properties"]["type"] = {"type": "string", "enum": list(event_types())}
    schemas[contract.ServiceSwitched.__name__]["properties"]["service"] = _service_name()
    depth = schemas[contract.QueueDepths.__name__]
    depth["properties"] = {queue: depth["additionalProperties"] for queue in queues()}
    depth["required"] = queues()
    for name in (contract.LeverRequest.__name__, contract.FaultRequest.__name__):
        schemas[name]["properties"]["service"] = _service_name()
    return schemas


def _service_name() -> dict[str, Any]:
    return {"type": "string", "enum": list(subscribers())}


def _order_post(operation_id: str, summary: str, answers: dict[str, Any]) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ref(contract.OrderRequest)},
                "application/x-www-form-urlencoded": {"schema": _ref(contract.OrderRequest)},
            },
        },
        "responses": {
            **answers,
            "400": _error("The body is not valid JSON."),
            "403": {"description": "A form post without its CSRF token."},
            "413": _error(f"The body is larger than {settings.ORDER_BODY_MAX_BYTES} bytes."),
            "422": _error("A field is missing or wrong; `field` names it, `errors` lists all."),
            "429": _error(
                "Too many orders from this client; see Retry-After.",
                headers={
                    "Retry-After": {
                        "schema": {"type": "integer", "minimum": 1},
                        "description": "Seconds until the client may order again.",
                    }
                },
            ),
        },
    }


def _staff(operation: dict[str, Any]) -> dict[str, Any]:
    operation["responses"]["403"] = {
        "description": "Not staff (sign in at /admin/login/), or a POST without its CSRF token.",
        "content": {
            "application/json": {"schema": _ref(contract.ErrorBody)},
            "text/html": {"schema": {"type": "string"}},
        },
    }
    operation["security"] = [{"staffSession": []}]
    return operation


def _control_service(action: str, running: bool) -> dict[str, Any]:
    return {
        "post": _staff(
            {
                "operationId": f"control_service_{action}",
                "summary": "The service consumes its queue again."
                if running
                else "The service stops consuming its queue; its messages wait.",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": _service_name()}
                ],
                "responses": {
                    "200": _json(
                        _ref(contract.ServiceSwitched), f'`"running": {str(running).lower()}`.'
                    ),
                    "404": _error("No service of that name."),
                    "503": _error("The broker is unreachable; nothing changed."),
                },
            }
        )
    }


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def _control_paths() -> dict[str, Any]:
    """The levers, faults and ledger of CONTRACT.md: staff session, CSRF token on writes."""
    return {
        "/control/levers": {
            "get": _staff(
                {
                    "operationId": "control_levers",
                    "summary": "Every lever as it is now.",
                    "responses": {"200": _json(_ref(contract.LeversDocument), "The levers.")},
                }
            ),
            "post": _staff(
                {
                    "operationId": "control_lever_pull",
                    "summary": "Pull one lever; applies to deliveries from then on, recorded.",
                    "requestBody": _json_body(contract.LeverRequest),
                    "responses": {
                        "200": _json(_ref(contract.LeversDocument), "Every lever after it."),
                        "400": _error("The body is not valid JSON."),
                        "409": _error(
                            "A lever that gives up a guarantee, with DJANGO_DEBUG=false and "
                            "CHECKOUT_UNSAFE_LEVERS unset; nothing changed."
                        ),
                        "413": _error("The body is too large."),
                        "422": _error("An unknown lever, service or value; `field` names it."),
                    },
                }
            ),
        },
        "/control/faults": {
            "get": _staff(
                {
                    "operationId": "control_faults",
                    "summary": "The faults switched on.",
                    "responses": {"200": _json(_ref(contract.Faults), "Every fault on.")},
                }
            ),
            "post": _staff(
                {
                    "operationId": "control_fault_add",
                    "summary": "Switch a fault on, for every order or one.",
                    "requestBody": _json_body(contract.FaultRequest),
                    "responses": {
                        "201": _json(_ref(contract.FaultItem), "The fault, switched on."),
                        "400": _error("The body is not valid JSON."),
                        "413": _error("The body is too large."),
                        "422": _error("A missing or wrong field; `field` names it."),
                    },
                }
            ),
        },
        "/control/faults/{faultId}": {
            "delete": _staff(
                {
                    "operationId": "control_fault_remove",
                    "summary": "Switch a fault off.",
                    "parameters": [
                        {
                            "name": "faultId",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0},
                            "description": "An id beyond what the database holds names nothing.",
                        }
                    ],
                    "responses": {
                        "204": {"description": "Switched off."},
                        "404": {
                            "description": "No fault of that id is on (a page for an id that "
                            "is not a number).",
                            "content": {
                                "application/json": {"schema": _ref(contract.ErrorBody)},
                                "text/html": {"schema": {"type": "string"}},
                            },
                        },
                    },
                }
            )
        },
        "/control/ledger": {
            "get": _staff(
                {
                    "operationId": "control_ledger",
                    "summary": "The invariants, checked now against every service's tables.",
                    "parameters": [
                        {
                            "name": "order",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1},
                            "description": "One order's verdict, with what each service holds "
                            "for it.",
                        }
                    ],
                    "responses": {
                        "200": _json(_ref(contract.Ledger), "The ledger's verdict."),
                        "404": _error("No order of that id."),
                        "422": _error("`order` is not a whole number."),
                    },
                }
            )
        },
    }


def openapi_schema() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Checkout Live",
            "version": "1.0.0",
            "description": "An event-driven checkout, next to the request-response one.",
        },
        "paths": {
            "/orders": {
                "post": {
                    **_order_post(
                        "orders_create",
                        "Place an order; the events take it from there.",
                        {
                            "202": _json(
                                _ref(contract.OrderAccepted),
                                "Accepted; the order's events follow.",
                                headers={
                                    "Location": {
                                        "schema": {"type": "string"},
                                        "description": "The order.",
                                    }
                                },
                            ),
                            "303": {"description": "A form post: see the order's page."},
                            "409": _error("The Idempotency-Key was used for a different order."),
                        },
                    ),
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": contract.IDEMPOTENCY_KEY_MAX},
                            "description": "The same key again returns the same order; "
                            "an empty key is no key.",
                        }
                    ],
                }
            },
            "/orders/sync": {
                "post": _order_post(
                    "orders_create_sync",
                    "The request-response checkout: waits for every service.",
                    {
                        "201": _json(
                            _ref(contract.OrderPlacedSync),
                            "Placed; shipped or cancelled already.",
                        ),
                        "502": _json(
                            _ref(contract.SyncFailed),
                            "A downstream service failed (made to fail from the console); the "
                            "chain stopped there, as a request-response checkout does.",
                        ),
                    },
                )
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
                            "schema": {"type": "integer", "minimum": 0},
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
                                "application/json": {"schema": _ref(contract.OrderDetail)},
                                "text/html": {"schema": {"type": "string"}},
                            },
                        },
                        "404": {
                            "description": "No such order: JSON to a JSON client, else a page.",
                            "content": {
                                "application/json": {"schema": _ref(contract.ErrorBody)},
                                "text/html": {"schema": {"type": "string"}},
                            },
                        },
                    },
                }
            },
            "/products": {
                "get": {
                    "operationId": "products_list",
                    "summary": "The catalog with live stock.",
                    "responses": {"200": _json(_ref(contract.Products), "Every product.")},
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi_json",
                    "summary": "This document.",
                    "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness: 200 while the web process runs.",
                    "responses": {"200": _text("`ok`.")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: the database, the broker and the channel layer answer.",
                    "responses": {
                        "200": _json(_ref(contract.Readiness), "Every part answers."),
                        "503": _json(_ref(contract.Readiness), "Some part does not: see down."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics: staff session or the metrics bearer token.",
                    "security": [{"staffSession": []}, {"metricsToken": []}],
                    "responses": {
                        "200": _text("Prometheus text format."),
                        "403": _text("Neither staff nor the metrics token."),
                    },
                }
            },
            "/control/services/{name}/stop": _control_service("stop", running=False),
            "/control/services/{name}/start": _control_service("start", running=True),
            "/control/queues": {
                "get": _staff(
                    {
                        "operationId": "control_queues",
                        "summary": "Messages waiting in every service queue.",
                        "responses": {"200": _json(_ref(contract.QueueDepths), "Per queue.")},
                    }
                )
            },
            **_control_paths(),
        },
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "staffSession": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
                "metricsToken": {"type": "http", "scheme": "bearer"},
            },
        },
    }
