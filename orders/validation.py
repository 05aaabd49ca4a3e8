"""Turning a request body into an order request, with errors that name the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from orders.models import Customer, Product
from services.bus.schemas import token_is_well_formed

FIELDS = ("userId", "productId", "quantity", "paymentToken")


class OrderInputError(Exception):
    """A field that is missing or wrong. ``errors`` maps every bad field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        self.field = next(iter(errors))
        super().__init__(f"{self.field}: {errors[self.field]}")


@dataclass(frozen=True)
class OrderRequest:
    userId: int
    productId: int
    quantity: int
    paymentToken: str
    # The rows the validation read to check them, so placing the order need not read them again.
    customer: Customer | None = field(default=None, compare=False, repr=False)
    product: Product | None = field(default=None, compare=False, repr=False)

    def fingerprint(self) -> str:
        """What an Idempotency-Key is bound to: the same key must come with the same order."""
        fields = {name: getattr(self, name) for name in FIELDS}
        canonical = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def order_request_parse(data: Any, *, from_form: bool = False) -> OrderRequest:
    """Check every field and that the customer and product exist; raises ``OrderInputError``."""
    if not isinstance(data, Mapping):
        raise OrderInputError({"body": "must be a JSON object with " + ", ".join(FIELDS)})
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    limit = settings.ORDER_MAX_QUANTITY
    for name, maximum in (("userId", None), ("productId", None), ("quantity", limit)):
        value, error = _positive_int(data.get(name), from_form=from_form, maximum=maximum)
        if error:
            errors[name] = f"{name} {error}"
        values[name] = value
    token = data.get("paymentToken")
    if not isinstance(token, str) or not token_is_well_formed(token):
        errors["paymentToken"] = (
            "paymentToken is required"
            if token in (None, "")
            else "paymentToken must look like tok_... (letters, digits or _, at most 64 after tok_)"
        )
    customer = product = None
    if "userId" not in errors:
        customer = Customer.objects.filter(pk=values["userId"]).first()
        if customer is None:
            errors["userId"] = f"userId {values['userId']} is not a known customer"
    if "productId" not in errors:
        product = Product.objects.filter(pk=values["productId"]).first()
        if product is None:
            errors["productId"] = f"productId {values['productId']} is not a known product"
    if errors:
        raise OrderInputError(errors)
    return OrderRequest(
        userId=values["userId"],
        productId=values["productId"],
        quantity=values["quantity"],
        paymentToken=token,
        customer=customer,
        product=product,
    )


def _positive_int(value: Any, *, from_form: bool, maximum: int | None) -> tuple[int, str]:
    if value is None or value == "":
        return 0, "is required"
    if from_form and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    # bool is an int in Python, but true is not a quantity.
    if isinstance(value, bool) or not isinstance(value, int):
        return 0, "must be a positive integer"
    if value < 1:
        return 0, "must be a positive integer"
    if value > (maximum or 2**63 - 1):
        if maximum is None:
            return 0, "is too large"
        return 0, f"must be at most {maximum} (the per-order limit)"
    return value, ""
