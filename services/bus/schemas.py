"""The event contract: one class per event type and version, validated where produced and consumed.

``Envelope`` is the contract's envelope; each payload class below is what ``payload`` must hold
for its type and version. ``event_types()`` lists the newest class of each type,
``payload_class(type, version)`` finds any version still defined, and ``json_schemas()`` exports
them all.

A version once released is frozen: events written with it stay in the log as they were written
(tests/test_schema_compat.py holds every version's JSON Schema to its snapshot in
services/bus/schema_snapshots/). A consumer sees only the newest version of each type:
``upcast`` lifts an older payload, one version at a time, through the upcasters written here
and nowhere else.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
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
    """Base of every payload. ``version`` changes when a field changes meaning or is removed.

    The newest version of a type is the class named after it; an older one is named with its
    version (``OrderCreatedV1``) and says which type it is in ``event_type``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: ClassVar[int] = 1
    event_type: ClassVar[str] = ""
    producer: ClassVar[str]
    description: ClassVar[str]

    @classmethod
    def type_name(cls) -> str:
        return cls.event_type or cls.__name__


MONEY_PATTERN = r"^\d{1,10}\.\d{2}$"
Money = Field(pattern=MONEY_PATTERN)
# The shop's one currency, and so the currency of every amount written before amounts said theirs.
CURRENCY = "USD"


def _redacted_or_valid(value: str) -> str:
    if not (token_is_valid(value) or REDACTED_TOKEN_PATTERN.fullmatch(value)):
        raise ValueError("paymentToken must look like tok_...")
    return value


# A token as the log holds it: chargeable while a subscriber may still need it, then redacted.
LoggedToken = Annotated[str, AfterValidator(_redacted_or_valid)]


class OrderCreatedV1(Payload):
    model_config = ConfigDict(title="OrderCreated")
    event_type = "OrderCreated"
    producer = "orders"
    description = "An order was accepted and stored with status INITIATED."
    userId: PositiveInt
    productId: PositiveInt
    quantity: PositiveInt
    amount: str = Money
    paymentToken: LoggedToken
    customerEmail: str = _personal(min_length=3, max_length=254)


class Amount(BaseModel):
    """A sum of money and its currency (ISO 4217), the sum as a decimal string: "89.00"."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    value: str = Money
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=[CURRENCY])


class OrderCreated(Payload):
    """Version 2: the customer is customerId, and the amount says its currency."""

    version = 2
    producer = "orders"
    description = "An order was accepted and stored with status INITIATED."
    customerId: PositiveInt
    productId: PositiveInt
    quantity: PositiveInt
    amount: Amount
    paymentToken: LoggedToken
    customerEmail: str = _personal(min_length=3, max_length=254)


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


class PointsAwarded(Payload):
    producer = "loyalty"
    description = "The loyalty service credited the customer points for a shipped order."
    customerId: PositiveInt
    points: int = Field(ge=0)
    totalPoints: int = Field(ge=0)


# Every version still defined, oldest first; the last one of a type is what consumers get.
_VERSIONS: tuple[type[Payload], ...] = (
    OrderCreatedV1,
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
    PointsAwarded,
)
_BY_VERSION: dict[tuple[str, int], type[Payload]] = {
    (cls.type_name(), cls.version): cls for cls in _VERSIONS
}
_TYPES: dict[str, type[Payload]] = {cls.type_name(): cls for cls in _VERSIONS}


def event_types() -> dict[str, type[Payload]]:
    return dict(_TYPES)


def payload_classes() -> list[type[Payload]]:
    """Every version of every type still defined, oldest first within a type."""
    return list(_VERSIONS)


def versions(type_name: str) -> list[int]:
    """Every version of ``type_name`` still defined, oldest first."""
    found = [version for (name, version) in _BY_VERSION if name == type_name]
    if not found:
        raise UnknownEventType(f"unknown event type {type_name!r}")
    return sorted(found)


def payload_class(type_name: str, version: int | None = None) -> type[Payload]:
    """The class of ``type_name`` at ``version``; the newest one without a version."""
    try:
        if version is None:
            return _TYPES[type_name]
        return _BY_VERSION[(type_name, version)]
    except KeyError:
        if type_name not in _TYPES:
            raise UnknownEventType(f"unknown event type {type_name!r}") from None
        known = ", ".join(f"v{v}" for v in versions(type_name))
        raise UnknownEventType(f"{type_name} v{version} is not known ({known})") from None


# --- Upcasting: the one place an older payload becomes the next version's --------------------


def _order_created_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    lifted = {key: value for key, value in payload.items() if key not in ("userId", "amount")}
    return {
        **lifted,
        "customerId": payload["userId"],
        "amount": {"value": payload["amount"], "currency": CURRENCY},
    }


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (type, version) -> the function that turns that version's payload into the next version's.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("OrderCreated", 1): _order_created_v1_to_v2,
}


def upcast(type_name: str, version: int, payload: dict[str, Any]) -> Payload:
    """``payload``, written as ``type_name`` v``version``, as the newest version's class.

    Validated as written first, then after each step: an upcaster that produced something its
    next version refuses raises ``ValidationError`` here, never in a handler.
    """
    data = payload_class(type_name, version).model_validate(payload).model_dump(mode="json")
    newest = payload_class(type_name).version
    while version < newest:
        data = UPCASTERS[(type_name, version)](data)
        version += 1
        data = payload_class(type_name, version).model_validate(data).model_dump(mode="json")
    return payload_class(type_name).model_validate(data)


def payload_upcast(payload: Payload) -> Payload:
    """A typed payload of any version as its type's newest one (itself if it is the newest)."""
    if type(payload) is payload_class(payload.type_name()):
        return payload
    return upcast(payload.type_name(), payload.version, payload.model_dump(mode="json"))


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
    # Not the event's content: the trace context it was emitted in (services/bus/tracing.py).
    metadata: dict[str, str] = Field(default_factory=dict)

    def typed_payload(self) -> Payload:
        """The payload as its version's class: what was written, not upcast."""
        return payload_class(self.type, self.version).model_validate(self.payload)


def envelope_validate(data: dict[str, Any]) -> tuple[Envelope, Payload]:
    """Validate a received event: envelope, known type and version, producer, payload.

    The payload is validated against the class of the version it was written with (any version
    still defined); ``payload_upcast`` then gives a consumer the newest. Raises
    ``pydantic.ValidationError`` or ``UnknownEventType``.
    """
    envelope = Envelope.model_validate(data)
    cls = payload_class(envelope.type, envelope.version)
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
    for cls in _VERSIONS
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


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its local ``$defs`` written in place: each export stands alone, and
    stays valid where it is copied under another root (the OpenAPI document's components)."""
    defs = schema.pop("$defs", {})

    def _walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return _walk(defs[ref.removeprefix("#/$defs/")])
            return {key: _walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [_walk(item) for item in node]
        return node

    return _walk(schema)


def json_schema(cls: type[Payload]) -> dict[str, Any]:
    """One version's JSON Schema, as exported and as its snapshot keeps it."""
    return {
        **_inlined(cls.model_json_schema()),
        "x-type": cls.type_name(),
        "x-version": cls.version,
        "x-producer": cls.producer,
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every type's newest schema under its name, and each older version still defined under
    ``<type>.v<version>`` (``OrderCreated.v1``): the log may hold events of any of them."""
    exported = {name: json_schema(cls) for name, cls in _TYPES.items()}
    for cls in _VERSIONS:
        if cls is not _TYPES[cls.type_name()]:
            exported[f"{cls.type_name()}.v{cls.version}"] = json_schema(cls)
    return exported


__all__ = [
    "CURRENCY",
    "DECLINED_TOKEN",
    "TOKEN_PATTERN",
    "Amount",
    "Envelope",
    "PaymentToken",
    "Payload",
    "UnknownEventType",
    "ValidationError",
    "envelope_validate",
    "event_types",
    "json_schema",
    "json_schemas",
    "mask_payload",
    "mask_token",
    "mask_tokens_in",
    "payload_class",
    "payload_classes",
    "payload_upcast",
    "token_is_valid",
    "token_last4",
    "upcast",
    "versions",
]
