"""The event contract: one class per event type, versioned, validated where produced and consumed.

``Envelope`` is the contract's envelope; each payload class below is what ``payload`` must hold
for its type. ``event_types()`` lists them all, and ``json_schemas()`` exports them.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
)

# The payment token rule of the contract. Anchored for JSON Schema (where `$` is the very end);
# Python must use it through ``token_is_valid`` (``fullmatch``), as `$` there also matches before
# a trailing newline.
TOKEN_PATTERN = re.compile(r"^tok_[A-Za-z0-9_]{1,64}$")
TOKEN_RULE = "tok_ followed by 1-64 letters, digits or _"
# Test mode: every well-formed token is charged, except this one, which is declined.
DECLINED_TOKEN = "tok_declined"
# The form an OrderCreated keeps in the log once every subscriber has handled it
# (services/bus/reconciler.py): still valid to read back, never a token anyone can charge.
REDACTED_TOKEN_PATTERN = re.compile(r"^tok_\*{4}[A-Za-z0-9_]{0,4}$")


def token_is_valid(token: object) -> bool:
    """The token rule: ``tok_`` and 1-64 letters, digits or ``_``, and nothing else."""
    return isinstance(token, str) and TOKEN_PATTERN.fullmatch(token) is not None


def _token_checked(token: str) -> str:
    if not token_is_valid(token):
        raise ValueError(f"paymentToken must be {TOKEN_RULE}")
    return token


# A field holding a chargeable token: what a request carries and a payment service reads.
PaymentToken = Annotated[
    str,
    AfterValidator(_token_checked),
    Field(json_schema_extra={"pattern": TOKEN_PATTERN.pattern}, examples=["tok_abc123"]),
]


def _personal(**constraints: Any) -> Any:
    """A field holding someone's e-mail address: masked wherever the public can see it."""
    return Field(json_schema_extra={"x-personal": "email"}, **constraints)


class UnknownEventType(ValueError):
    pass


class Payload(BaseModel):
    """Base of every payload. ``version`` changes when a field changes meaning or is removed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: ClassVar[int] = 1
    producer: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


Money = Field(pattern=r"^\d{1,10}\.\d{2}$")


class OrderCreated(Payload):
    producer = "orders"
    description = "An order was accepted and stored with status INITIATED."
    userId: PositiveInt
    productId: PositiveInt
    quantity: PositiveInt
    amount: str = Money
    paymentToken: str
    customerEmail: str = _personal(min_length=3, max_length=254)

    @field_validator("paymentToken")
    @classmethod
    def _token_is_well_formed(cls, value: str) -> str:
        if not (token_is_valid(value) or REDACTED_TOKEN_PATTERN.fullmatch(value)):
            raise ValueError("paymentToken must look like tok_...")
        return value


class PaymentProcessed(Payload):
    producer = "payment"
    description = "The payment service charged the order's token."
    paymentId: PositiveInt
    amount: str = Money
    tokenLast4: str = Field(max_length=4)


class PaymentFailed(Payload):
    producer = "payment"
    description = "The payment was declined; nothing was charged."
    reason: str = Field(max_length=200)


class InventoryUpdated(Payload):
    producer = "inventory"
    description = "Stock was reserved for the order."
    productId: PositiveInt
    quantity: PositiveInt
    stockAfter: int = Field(ge=0)


class InventoryRejected(Payload):
    producer = "inventory"
    description = "There was not enough stock; nothing was reserved."
    productId: PositiveInt
    quantity: PositiveInt
    available: int = Field(ge=0)


class InventoryReleased(Payload):
    producer = "inventory"
    description = "Compensation: stock reserved for a failed order was given back."
    # None when nothing had been reserved yet: the release arrived first and blocks the reserve.
    productId: PositiveInt | None
    quantity: int = Field(ge=0)
    stockAfter: int = Field(ge=0)


class PaymentRefunded(Payload):
    producer = "payment"
    description = "Compensation: the charge of an order that could not be filled was refunded."
    amount: str = Money
    reason: str = Field(max_length=200)


class OrderConfirmed(Payload):
    producer = "orders"
    description = "Payment taken and stock reserved: the order will ship."
    paymentEvent: uuid.UUID
    inventoryEvent: uuid.UUID


class NotificationSent(Payload):
    producer = "notification"
    description = "The customer was emailed."
    kind: str = Field(pattern=r"^(confirmed|cancelled)$")
    to: str = _personal(max_length=254)
    subject: str = Field(max_length=200)


class OrderShipped(Payload):
    producer = "notification"
    description = "The order is confirmed to the customer and handed over for shipping."
    trackingRef: str = Field(max_length=40)


class OrderCancelled(Payload):
    producer = "orders"
    description = "The order failed and every compensation it needed is done."
    reason: str = Field(max_length=200)


_TYPES: dict[str, type[Payload]] = {
    cls.__name__: cls
    for cls in (
        OrderCreated,
        PaymentProcessed,
        PaymentFailed,
        InventoryUpdated,
        InventoryRejected,
        OrderConfirmed,
        OrderShipped,
        NotificationSent,
        InventoryReleased,
        PaymentRefunded,
        OrderCancelled,
    )
}


def event_types() -> dict[str, type[Payload]]:
    return dict(_TYPES)


def payload_class(type_name: str) -> type[Payload]:
    try:
        return _TYPES[type_name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {type_name!r}") from None


class Envelope(BaseModel):
    """The contract's envelope, as stored, as sent to the broker and as sent to a browser."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: PositiveInt
    eventId: uuid.UUID
    type: str
    version: PositiveInt
    orderId: PositiveInt
    occurredAt: datetime
    producer: str
    causationId: uuid.UUID | None
    payload: dict[str, Any]

    def typed_payload(self) -> Payload:
        return payload_class(self.type).model_validate(self.payload)


def envelope_validate(data: dict[str, Any]) -> tuple[Envelope, Payload]:
    """Validate a received event: envelope, known type, matching version and producer, payload.

    Raises ``pydantic.ValidationError`` or ``UnknownEventType``.
    """
    envelope = Envelope.model_validate(data)
    cls = payload_class(envelope.type)
    if envelope.version != cls.version:
        raise UnknownEventType(f"{envelope.type} v{envelope.version} is not known (v{cls.version})")
    if envelope.producer != cls.producer:
        raise UnknownEventType(f"{envelope.type} must come from {cls.producer}")
    return envelope, cls.model_validate(envelope.payload)


# A token's last four characters are shown only when at least this many more stay hidden: the
# last four of ``tok_ab12`` are the whole secret.
_HIDDEN_AT_LEAST = 2
_SHOWN = 4
_TOKEN_IN_TEXT = re.compile(r"tok_[A-Za-z0-9_]+")


def token_last4(token: str) -> str:
    """The token's last four characters, or "" when they would give away most of it."""
    secret = token.removeprefix("tok_")
    return secret[-_SHOWN:] if len(secret) >= _SHOWN + _HIDDEN_AT_LEAST else ""


def mask_token(token: str) -> str:
    """``tok_abc123`` -> ``tok_****c123``, ``tok_ab12`` -> ``tok_****``: enough to recognise,
    never enough to reuse."""
    if not token.startswith("tok_"):
        return "****"
    return "tok_****" + token_last4(token)


def mask_tokens_in(text: str) -> str:
    """Every token in a text masked: an error message or a traceback may quote one."""
    return _TOKEN_IN_TEXT.sub(lambda match: mask_token(match.group(0)), text)


def mask_email(address: str) -> str:
    """``ada@example.com`` -> ``a***@example.com``: who it went to, not the address itself."""
    local, at, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if at else "***"


# The payload fields that hold an e-mail address, from the classes that declare them.
_PERSONAL_FIELDS = frozenset(
    name
    for cls in _TYPES.values()
    for name, info in cls.model_fields.items()
    if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("x-personal")
)


def mask_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as anyone may see it: no payment token, no e-mail address whole."""
    masked = payload
    token = payload.get("paymentToken")
    if isinstance(token, str):
        masked = {**masked, "paymentToken": mask_token(token)}
    for name in _PERSONAL_FIELDS.intersection(payload):
        if isinstance(payload[name], str):
            masked = {**masked, name: mask_email(payload[name])}
    return masked


def json_schemas() -> dict[str, dict[str, Any]]:
    return {
        name: {
            **cls.model_json_schema(),
            "x-version": cls.version,
            "x-producer": cls.producer,
        }
        for name, cls in _TYPES.items()
    }


__all__ = [
    "DECLINED_TOKEN",
    "TOKEN_PATTERN",
    "Envelope",
    "PaymentToken",
    "Payload",
    "UnknownEventType",
    "ValidationError",
    "envelope_validate",
    "event_types",
    "json_schemas",
    "mask_payload",
    "mask_token",
    "mask_tokens_in",
    "payload_class",
    "token_is_valid",
    "token_last4",
]
