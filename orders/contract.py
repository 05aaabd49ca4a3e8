"""The HTTP contract: every JSON body the order service and the console's control endpoints
take or give, as pydantic models.

The views check requests with these models and build their answers from them, and
``orders/openapi.py`` generates /openapi.json from them. The payment token rule and the event
envelope belong to the bus's contract (``services/bus/schemas.py``) and are imported, not copied;
the statuses are ``orders.models.OrderStatus``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    RootModel,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from orders.models import Customer, Order, OrderStatus, Product
from services.bus.rows import row_by_pk
from services.bus.schemas import TOKEN_RULE, Envelope, PaymentToken

IDEMPOTENCY_KEY_MAX = 255
# The largest id a database column holds; a larger one names nothing.
ID_MAX = 2**63 - 1

Id = Annotated[int, Field(ge=1, le=ID_MAX)]
Status = Annotated[OrderStatus, Field(description="The order's status, folded from its events.")]


class ApiError(Exception):
    """A refused request, as its JSON answer says it: ``error`` is the code, ``field`` the culprit.

    ``errors`` maps every bad field to its message, so a form can show them all.
    """

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        field: str | None = None,
        errors: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.field, self.errors, self.headers = field, errors, headers or {}

    @classmethod
    def invalid(cls, errors: dict[str, str]) -> ApiError:
        field = next(iter(errors))
        return cls(422, "invalid_field", errors[field], field=field, errors=errors)

    def body(self) -> ErrorBody:
        return ErrorBody(
            error=self.error, message=self.message, field=self.field, errors=self.errors
        )


def error_response(exc: ApiError) -> JsonResponse:
    """The one way a refusal becomes an answer, on every JSON endpoint of the order service."""
    response = JsonResponse(exc.body().model_dump(exclude_none=True), status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    return response


def body_too_large() -> ApiError:
    return ApiError(
        413, "body_too_large", f"the body is larger than {settings.ORDER_BODY_MAX_BYTES} bytes"
    )


def body_read(request: HttpRequest) -> bytes:
    """The request's body; raises ``ApiError`` 413 when it is over the limit."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.ORDER_BODY_MAX_BYTES:
        raise body_too_large()
    try:
        return request.body
    except RequestDataTooBig:
        raise body_too_large() from None


def json_body(request: HttpRequest) -> Any:
    """The request's body as JSON; raises ``ApiError`` 413 (too large) or 400 (not JSON)."""
    body = body_read(request)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        # ValueError covers json's own errors and an integer too long to convert.
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(
            400, "malformed_json", "the body is not valid JSON: nested too deeply"
        ) from None


# --- Requests -------------------------------------------------------------------------------------


def _quantity_limit(schema: dict[str, Any]) -> None:
    # Read when the schema is generated, so it follows the setting as the validation does.
    schema["maximum"] = settings.ORDER_MAX_QUANTITY


class OrderRequest(BaseModel):
    """The body of POST /orders and POST /orders/sync, from JSON or from the shop's form."""

    # Strict: "1", 1.5 and true are not quantities. Unknown keys are ignored, as a client may
    # send more than we read.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    userId: Id = Field(examples=[123])
    productId: Id = Field(examples=[456])
    quantity: int = Field(ge=1, examples=[1], json_schema_extra=_quantity_limit)
    paymentToken: PaymentToken

    # The rows ``order_request_parse`` read to check the ids, so placing the order need not
    # read them again.
    _customer: Customer | None = PrivateAttr(default=None)
    _product: Product | None = PrivateAttr(default=None)

    @field_validator("quantity")
    @classmethod
    def _within_the_limit(cls, value: int) -> int:
        limit = settings.ORDER_MAX_QUANTITY
        if value > limit:
            raise PydanticCustomError(
                "quantity_limit", "must be at most {limit} (the per-order limit)", {"limit": limit}
            )
        return value

    @property
    def customer(self) -> Customer | None:
        return self._customer

    @property
    def product(self) -> Product | None:
        return self._product

    def fingerprint(self) -> str:
        """What an Idempotency-Key is bound to: the same key must come with the same order."""
        canonical = json.dumps(self.model_dump(include=set(FIELDS)), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


FIELDS = tuple(OrderRequest.model_fields)


def order_request_parse(data: Any, *, from_form: bool = False) -> OrderRequest:
    """Check every field, then that the customer and product exist; raises ``ApiError`` (422).

    A form sends every value as text: its whole numbers are read as numbers first, and then it
    goes through the same model as JSON.
    """
    if from_form and isinstance(data, Mapping):
        data = {name: _form_value(data.get(name)) for name in FIELDS if name in data}
    if not isinstance(data, Mapping):
        raise ApiError.invalid({"body": "must be a JSON object with " + ", ".join(FIELDS)})
    try:
        request = OrderRequest.model_validate(dict(data))
    except ValidationError as exc:
        raise ApiError.invalid(_field_errors(exc)) from None
    errors = {}
    request._customer = row_by_pk(Customer, request.userId)
    if request._customer is None:
        errors["userId"] = f"userId {request.userId} is not a known customer"
    request._product = row_by_pk(Product, request.productId)
    if request._product is None:
        errors["productId"] = f"productId {request.productId} is not a known product"
    if errors:
        raise ApiError.invalid(errors)
    return request


_FORM_NUMBER = re.compile(r"\s*[0-9]{1,30}\s*")  # ASCII digits only: int("²") fails


def _form_value(value: Any) -> Any:
    if isinstance(value, str) and _FORM_NUMBER.fullmatch(value):
        return int(value)
    return value


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else "body"
        errors.setdefault(name, f"{name} {_problem(name, error)}")
    return errors


def _problem(name: str, error: ErrorDetails) -> str:
    if error["type"] == "missing" or error.get("input") in (None, ""):
        return "is required"
    if name == "paymentToken":
        return f"must look like {TOKEN_RULE}"
    if error["type"] == "quantity_limit":
        return error["msg"]
    if error["type"] == "less_than_equal":
        return "is too large"
    return "must be a positive integer"


# --- Answers --------------------------------------------------------------------------------------


class _Answer(BaseModel):
    def response(self, status: int = 200) -> JsonResponse:
        return JsonResponse(self.model_dump(mode="json"), status=status, safe=False)


class ErrorBody(_Answer):
    """Every refusal: 400, 404, 409, 413, 422, 429 and 502 (with more fields, see SyncFailed)."""

    error: str = Field(examples=["invalid_field"])
    message: str
    field: str | None = Field(default=None, description="The field that is wrong (422, 409).")
    errors: dict[str, str] | None = Field(
        default=None, description="Every bad field and its message (422)."
    )


class OrderAccepted(_Answer):
    """202 of POST /orders: stored, and the events take it from there."""

    orderId: Id
    status: Status
    message: str = Field(examples=["Order received. Processing..."])


class Hop(_Answer):
    service: str
    ms: float = Field(ge=0)
    outcome: str


class OrderPlacedSync(_Answer):
    """201 of POST /orders/sync: every service answered; shipped or cancelled already."""

    orderId: Id
    status: Literal[OrderStatus.SHIPPED, OrderStatus.CANCELLED]
    message: str
    hops: list[Hop]
    totalMs: float = Field(ge=0)


class SyncFailed(_Answer):
    """502 of POST /orders/sync: a service failed; what was done before it stays done."""

    orderId: Id
    status: Status
    error: Literal["service_failed"] = "service_failed"
    message: str
    hops: list[Hop]
    totalMs: float = Field(ge=0)


class OrderDetail(_Answer):
    """GET /orders/<id> as JSON: the order and its events, in seq order, tokens masked."""

    orderId: Id
    status: Status
    mode: Order.Mode
    events: list[Envelope]


class ProductItem(_Answer):
    id: Id
    name: str
    price: str = Field(pattern=r"^\d+\.\d{2}$", examples=["89.00"])
    stock: int = Field(ge=0)


class Products(RootModel[list[ProductItem]]):
    """GET /products: the catalog with live stock."""


class ServiceSwitched(_Answer):
    """POST /control/services/<name>/stop and /start."""

    service: str
    running: bool


class QueueDepths(RootModel[dict[str, Annotated[int, Field(ge=0)] | None]]):
    """GET /control/queues: messages waiting per service queue (null: the broker is away)."""


class Readiness(_Answer):
    """GET /readyz: whether every part the site needs answers now."""

    ready: bool
    # part -> "ok", or what went wrong reaching it
    checks: dict[str, str]
    down: list[str] = Field(description="the parts that did not answer")


# --- The console's levers, faults and ledger (CONTRACT.md, "Levers" and "Control") ---------------

# Idempotency drops one layer of protection per step: "constraint-only" keeps only the database's
# unique constraints (a repeat fails, is retried and dead-lettered), "off" keeps nothing.
IdempotencyValue = Literal["on", "constraint-only", "off"]
DeliveryValue = Literal["at-least-once", "at-most-once"]
LEVERS = ("idempotency", "delivery", "schema", "subscription")


class LeverRequest(BaseModel):
    """POST /control/levers: one change. ``schema`` takes ``eventType`` and ``version``;
    ``subscription`` takes ``service``, ``eventType`` (one its code handles), ``value`` on or
    off, and ``replay`` (with on: first every stored event of the type, in seq order)."""

    model_config = ConfigDict(extra="ignore")

    lever: Literal["idempotency", "delivery", "schema", "subscription"]
    service: str | None = Field(default=None, examples=["payment"])
    value: IdempotencyValue | DeliveryValue | None = Field(default=None, examples=["off"])
    eventType: str | None = Field(default=None, examples=["OrderCreated"])
    version: int | None = Field(default=None, ge=1, examples=[2])
    replay: bool | None = Field(default=None, examples=[True])


class LeversDocument(_Answer):
    """GET /control/levers, and the answer of POST: every lever as it is now."""

    idempotency: dict[str, IdempotencyValue]
    delivery: dict[str, DeliveryValue]
    schemas: dict[str, Annotated[int, Field(ge=1)]] = Field(
        description="The version the producer emits, per event type."
    )
    subscriptions: dict[str, list[str]] = Field(description="Who handles what, now.")


FaultKind = Literal["latency", "failure", "duplicate", "decline", "out_of_stock", "crash"]


class FaultRequest(BaseModel):
    """POST /control/faults: ``value`` is milliseconds for latency and a rate (0..1] for
    failure; ``orderId`` limits the fault to one order."""

    model_config = ConfigDict(strict=True, extra="ignore")

    service: str = Field(examples=["payment"])
    kind: FaultKind
    value: float | None = Field(default=None, allow_inf_nan=False, examples=[0.5])
    orderId: Id | None = None

    @classmethod
    def parse(cls, data: Any) -> FaultRequest:
        if not isinstance(data, Mapping):
            raise ApiError.invalid({"body": "must be a JSON object with service and kind"})
        # A JSON number may be written as an integer (250 ms); strict mode takes it as a float.
        if isinstance(data.get("value"), int) and not isinstance(data.get("value"), bool):
            data = {**data, "value": float(data["value"])}
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            errors: dict[str, str] = {}
            for error in exc.errors(include_url=False):
                name = str(error["loc"][0]) if error["loc"] else "body"
                errors.setdefault(name, f"{name}: {error['msg']}")
            raise ApiError.invalid(errors) from None


class FaultItem(_Answer):
    """A fault switched on (GET /control/faults lists them; POST answers 201 with one)."""

    id: Id
    service: str
    kind: FaultKind
    value: float
    orderId: Id | None


class Faults(RootModel[list[FaultItem]]):
    """GET /control/faults."""


class LedgerViolation(_Answer):
    invariant: str = Field(examples=["one_charge_per_order"])
    orderId: Id | None = Field(description="The order it names; null for a product's stock.")
    detail: str


class LedgerOrder(_Answer):
    """What each service's own tables hold for one order (GET /control/ledger?order=<id>)."""

    orderId: Id
    status: str
    inFlight: bool = Field(description="Still within its deadline, unfinished.")
    charges: dict[str, int | str] = Field(
        description="Payments by status (charged counts net of refunds), the amount charged and "
        "the order's amount."
    )
    reservations: dict[str, int] = Field(
        description="Reservations by state, the units they hold and the order's quantity."
    )
    emails: dict[str, int] = Field(description="E-mails sent, by kind.")
    points: int = Field(ge=0, description="Loyalty awards for the order.")


class Ledger(_Answer):
    """GET /control/ledger: the invariants, checked now against every service's own tables;
    with ``?order=<id>``, for that order alone (and its product's stock)."""

    healthy: bool
    violations: list[LedgerViolation]
    duplicatesSuppressed: int = Field(ge=0, description="Repeats the inboxes recognised.")
    invariants: list[str] = Field(description="Every invariant checked.")
    orders: int = Field(ge=0)
    inFlight: int = Field(ge=0, description="Orders still within their deadline.")
    subscribers: dict[str, dict[str, int]] = Field(
        description="Per subscriber: stored events handled, waiting, dead-lettered, overdue."
    )
    checkedAt: str
    order: LedgerOrder | None = Field(default=None, description="With ?order=<id> only.")
