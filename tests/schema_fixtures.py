"""Payloads as each version of OrderCreated writes them: the round-trip fixtures of the
compatibility check (tests/test_schema_compat.py), shared with the tests of the schemas and of
replaying old logs."""

from __future__ import annotations

from typing import Any

ORDER_CREATED_V1: dict[str, Any] = {
    "userId": 123,
    "productId": 456,
    "quantity": 2,
    "amount": "178.00",
    "paymentToken": "tok_abc123",
    "customerEmail": "ada@example.com",
}
ORDER_CREATED_V2: dict[str, Any] = {
    "customerId": 123,
    "productId": 456,
    "quantity": 2,
    "amount": {"value": "178.00", "currency": "USD"},
    "paymentToken": "tok_abc123",
    "customerEmail": "ada@example.com",
}

# (type, version) -> payloads, for every type with more than one version.
FIXTURES: dict[tuple[str, int], list[dict[str, Any]]] = {
    ("OrderCreated", 1): [
        ORDER_CREATED_V1,
        # As the log keeps it once every subscriber handled it (services/bus/reconciler.py).
        {**ORDER_CREATED_V1, "paymentToken": "tok_****c123"},
    ],
    ("OrderCreated", 2): [ORDER_CREATED_V2],
}
