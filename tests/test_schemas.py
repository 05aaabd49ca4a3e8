"""The event contract: typed, versioned payloads, validated on the way out and on the way in."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from services.bus import schemas
from services.bus.schemas import (
    DECLINED_TOKEN,
    UnknownEventType,
    envelope_validate,
    mask_payload,
    mask_token,
    mask_tokens_in,
    token_is_valid,
    token_last4,
)
from tests.schema_fixtures import ORDER_CREATED_V1, ORDER_CREATED_V2

CONTRACT_TYPES = {
    "OrderCreated",
    "PaymentProcessed",
    "PaymentFailed",
    "InventoryUpdated",
    "InventoryRejected",
    "OrderConfirmed",
    "OrderShipped",
    "NotificationSent",
    "InventoryReleased",
    "PaymentRefunded",
    "OrderCancelled",
    "PointsAwarded",
}


def _envelope(**overrides):
    data = {
        "seq": 1,
        "eventId": str(uuid.uuid4()),
        "type": "PaymentFailed",
        "version": 1,
        "orderId": 7,
        "occurredAt": "2026-11-27T10:00:00+00:00",
        "producer": "payment",
        "causationId": None,
        "payload": {"reason": "card declined"},
    }
    data.update(overrides)
    return data


def test_every_event_type_of_the_contract_has_a_schema():
    assert set(schemas.event_types()) == CONTRACT_TYPES


def test_json_schemas_carry_the_version_and_producer():
    exported = schemas.json_schemas()

    assert exported["OrderCreated"]["x-version"] == 2
    assert exported["OrderCreated"]["x-producer"] == "orders"
    assert "paymentToken" in exported["OrderCreated"]["properties"]
    assert exported["OrderCreated.v1"]["x-version"] == 1
    assert exported["OrderCreated.v1"]["x-type"] == "OrderCreated"
    assert "userId" in exported["OrderCreated.v1"]["properties"]
    assert "customerId" in exported["OrderCreated"]["properties"]


def test_a_well_formed_envelope_validates_to_its_typed_payload():
    envelope, payload = envelope_validate(_envelope())

    assert envelope.orderId == 7
    assert isinstance(payload, schemas.PaymentFailed)
    assert payload.reason == "card declined"


def test_a_payload_with_a_missing_field_is_rejected():
    with pytest.raises(ValidationError):
        envelope_validate(_envelope(payload={}))


def test_a_payload_with_an_unexpected_field_is_rejected():
    with pytest.raises(ValidationError):
        envelope_validate(_envelope(payload={"reason": "x", "extra": 1}))


def test_an_unknown_type_is_rejected():
    with pytest.raises(UnknownEventType):
        envelope_validate(_envelope(type="OrderTeleported"))


def test_an_unknown_version_is_rejected():
    with pytest.raises(UnknownEventType):
        envelope_validate(_envelope(version=2))
    with pytest.raises(UnknownEventType):
        envelope_validate(_envelope(type="OrderCreated", version=3, producer="orders"))


def test_an_event_from_the_wrong_producer_is_rejected():
    with pytest.raises(UnknownEventType):
        envelope_validate(_envelope(producer="inventory"))


def test_an_envelope_missing_its_seq_is_rejected():
    data = _envelope()
    del data["seq"]
    with pytest.raises(ValidationError):
        envelope_validate(data)


@pytest.mark.parametrize("token", ["card-4242", "tok_abc123\n"])
def test_a_producer_cannot_build_an_order_created_with_a_bad_token(token):
    with pytest.raises(ValidationError):
        schemas.OrderCreatedV1(
            userId=1,
            productId=1,
            quantity=1,
            amount="1.00",
            paymentToken=token,
            customerEmail="a@example.com",
        )


def test_tokens_are_masked_to_their_last_four_characters():
    assert mask_token("tok_abc123") == "tok_****c123"
    assert mask_token("4242424242424242") == "****"
    assert mask_payload({"paymentToken": "tok_abc123", "quantity": 1}) == {
        "paymentToken": "tok_****c123",
        "quantity": 1,
    }


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("tok_ab12", "tok_****"),
        ("tok_a", "tok_****"),
        ("tok_abcde", "tok_****"),
        ("tok_abcdef", "tok_****cdef"),
        ("tok_WholeSecret9876", "tok_****9876"),
    ],
)
def test_a_token_shows_its_last_four_only_when_more_of_it_stays_hidden(token, masked):
    assert mask_token(token) == masked
    assert token_last4(token) == masked.removeprefix("tok_****")
    assert mask_tokens_in(f"refused {token!r}, again: {token}.") == (
        f"refused {masked!r}, again: {masked}."
    )


@pytest.mark.parametrize("token", ["tok_abc123", "tok_" + "a" * 64, "tok__", DECLINED_TOKEN])
def test_a_well_formed_token_is_valid(token):
    assert token_is_valid(token)


@pytest.mark.parametrize(
    "token",
    [
        "tok_",
        "tok_" + "a" * 65,
        "tok_declined\n",
        "tok_abc 123",
        "tok_\u00e9",
        "card_4242",
        42,
        None,
    ],
)
def test_anything_else_is_not_a_token(token):
    assert not token_is_valid(token)


# --- versions and upcasting --------------------------------------------------------------------

_ORDER_CREATED_V1 = ORDER_CREATED_V1


def test_order_created_has_both_versions_and_v2_is_the_newest():
    assert schemas.versions("OrderCreated") == [1, 2]
    assert schemas.payload_class("OrderCreated") is schemas.OrderCreated
    assert schemas.payload_class("OrderCreated", 1) is schemas.OrderCreatedV1
    assert schemas.OrderCreatedV1.type_name() == "OrderCreated"
    assert schemas.versions("PaymentFailed") == [1]


def test_an_envelope_of_either_version_validates_against_that_versions_class():
    v1 = _envelope(type="OrderCreated", version=1, producer="orders", payload=_ORDER_CREATED_V1)
    v2_payload = ORDER_CREATED_V2
    v2 = _envelope(type="OrderCreated", version=2, producer="orders", payload=v2_payload)

    assert isinstance(envelope_validate(v1)[1], schemas.OrderCreatedV1)
    assert isinstance(envelope_validate(v2)[1], schemas.OrderCreated)
    with pytest.raises(ValidationError):
        envelope_validate({**v1, "payload": v2_payload})
    with pytest.raises(ValidationError):
        envelope_validate({**v2, "payload": _ORDER_CREATED_V1})


def test_v1_upcasts_to_v2_renaming_the_customer_and_giving_the_amount_its_currency():
    lifted = schemas.upcast("OrderCreated", 1, _ORDER_CREATED_V1)

    assert isinstance(lifted, schemas.OrderCreated)
    assert lifted.model_dump(mode="json") == ORDER_CREATED_V2
    assert ORDER_CREATED_V2["customerId"] == _ORDER_CREATED_V1["userId"]
    assert ORDER_CREATED_V2["amount"] == {"value": "178.00", "currency": "USD"}


def test_a_redacted_token_still_upcasts():
    lifted = schemas.upcast(
        "OrderCreated", 1, {**_ORDER_CREATED_V1, "paymentToken": "tok_****c123"}
    )

    assert lifted.paymentToken == "tok_****c123"


def test_the_newest_version_is_not_touched_by_upcasting():
    payload = schemas.PaymentFailed(reason="card declined")
    v2 = schemas.upcast("OrderCreated", 1, _ORDER_CREATED_V1)

    assert schemas.payload_upcast(payload) is payload
    assert schemas.payload_upcast(v2) is v2
    assert schemas.payload_upcast(schemas.OrderCreatedV1(**_ORDER_CREATED_V1)) == v2


def test_an_upcast_of_a_payload_its_version_refuses_is_refused():
    with pytest.raises(ValidationError):
        schemas.upcast("OrderCreated", 1, {**_ORDER_CREATED_V1, "amount": 178})


def test_masking_covers_the_email_and_token_of_both_versions():
    v2 = schemas.upcast("OrderCreated", 1, _ORDER_CREATED_V1).model_dump(mode="json")

    for payload in (_ORDER_CREATED_V1, v2):
        masked = mask_payload(payload)
        assert masked["customerEmail"] == "a***@example.com"
        assert masked["paymentToken"] == "tok_****c123"


# --- which version a producer emits --------------------------------------------------------


@pytest.fixture
def _schema_provider_restored():
    from services.bus import hooks

    saved = list(hooks._schema_version)
    yield hooks
    hooks._schema_version[:] = saved


def test_a_producer_emits_the_providers_version_or_else_the_oldest(_schema_provider_restored):
    hooks = _schema_provider_restored
    hooks.schema_versions_use(lambda name: 2)
    assert hooks.schema_version_for("OrderCreated") == 2
    # A version the provider names that is not defined is never emitted.
    assert hooks.schema_version_for("PaymentFailed") == 1

    def _broken(name: str) -> int:
        raise RuntimeError("database down")

    hooks.schema_versions_use(_broken)
    assert hooks.schema_version_for("OrderCreated") == 1
    hooks._schema_version.clear()
    assert hooks.schema_version_for("OrderCreated") == 1
