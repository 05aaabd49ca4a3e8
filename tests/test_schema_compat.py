"""The compatibility check: no schema change may break a consumer of a version still in the log.

Every released version has its JSON Schema in services/bus/schema_snapshots/. A released version
never changes and is never removed (the log keeps its events); the round-trip fixtures below, one
set per version of each type that has several, validate against their version's snapshot, upcast
to what the newest class and its snapshot take, and are handled by every subscriber of the type
with the same effect whatever version they were written in.
"""

from __future__ import annotations

import json
import os
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from services.bus import schemas
from services.bus.consumer import Outcome, event_consume
from services.bus.registry import subscribers
from services.bus.schemas import payload_class, payload_classes, upcast, versions
from services.inventory.models import Reservation
from services.payment.models import Payment
from tests.schema_fixtures import FIXTURES

SNAPSHOTS = Path(schemas.__file__).parent / "schema_snapshots"
_WRITE = os.environ.get("SCHEMA_SNAPSHOTS_WRITE") == "1"

_VERSIONED = sorted(
    {name for name, _ in FIXTURES}
    | {cls.type_name() for cls in payload_classes() if len(versions(cls.type_name())) > 1}
)
_ALL = [(cls.type_name(), cls.version) for cls in payload_classes()]


def _snapshot_path(type_name: str, version: int) -> Path:
    return SNAPSHOTS / f"{type_name}.v{version}.json"


def _snapshot(type_name: str, version: int) -> dict[str, Any]:
    return json.loads(_snapshot_path(type_name, version).read_text())


def _chargeable(payload: dict[str, Any]) -> bool:
    return schemas.token_is_valid(payload["paymentToken"])


@pytest.mark.parametrize(("type_name", "version"), _ALL)
def test_a_released_versions_schema_never_changes(type_name, version):
    path = _snapshot_path(type_name, version)
    exported = schemas.json_schema(payload_class(type_name, version))
    if not path.exists() and _WRITE:
        path.write_text(json.dumps(exported, indent=2, sort_keys=True) + "\n")
    assert path.exists(), (
        f"{type_name} v{version} has no snapshot: once it is final, write it with "
        "SCHEMA_SNAPSHOTS_WRITE=1 pytest tests/test_schema_compat.py"
    )
    assert exported == _snapshot(type_name, version), (
        f"{type_name} v{version} is released and frozen: add a new version and its upcaster "
        "instead of changing it"
    )


def test_every_released_version_is_still_defined():
    released = {tuple(p.stem.rsplit(".v", 1)) for p in SNAPSHOTS.glob("*.json")}

    missing = sorted(f"{t} v{v}" for t, v in released if (t, int(v)) not in set(_ALL))
    assert not missing, f"the log may still hold events of {missing}: keep their classes"


def test_every_version_of_a_type_with_several_has_round_trip_fixtures():
    assert "OrderCreated" in _VERSIONED
    for type_name in _VERSIONED:
        for version in versions(type_name):
            assert FIXTURES.get((type_name, version)), f"no fixture of {type_name} v{version}"


@pytest.mark.parametrize(
    ("type_name", "version", "payload"),
    [(t, v, p) for (t, v), payloads in FIXTURES.items() for p in payloads],
)
def test_a_fixture_upcasts_to_what_the_newest_class_and_snapshot_take(type_name, version, payload):
    written = jsonschema_rs.validator_for(_snapshot(type_name, version))
    newest = payload_class(type_name)
    newest_schema = jsonschema_rs.validator_for(_snapshot(type_name, newest.version))

    assert written.is_valid(payload)
    lifted = upcast(type_name, version, payload)

    assert type(lifted) is newest
    assert newest_schema.is_valid(lifted.model_dump(mode="json"))
    # Nothing the event said is lost on the way: the newest version says the same of the order.
    if type_name == "OrderCreated":
        assert lifted.paymentToken == payload["paymentToken"]
        assert lifted.customerEmail == payload["customerEmail"]
        assert lifted.amount.value == "178.00"
        assert lifted.customerId == 123


def _envelope(type_name: str, version: int, payload: dict[str, Any], order_id: int) -> dict:
    cls = payload_class(type_name, version)
    return {
        "seq": order_id,
        "eventId": str(uuid.uuid4()),
        "type": type_name,
        "version": version,
        "orderId": order_id,
        "occurredAt": timezone.now().isoformat(),
        "producer": cls.producer,
        "causationId": None,
        "payload": payload,
    }


_HANDLED = [
    (service.name, type_name)
    for service in subscribers().values()
    for type_name in _VERSIONED
    if type_name in service.handles
]


@pytest.mark.django_db
@pytest.mark.parametrize(("service", "type_name"), _HANDLED)
def test_every_handler_takes_every_version_with_the_same_effect(
    service, type_name, customer, product
):
    effects = []
    for order_id, (version, payload) in enumerate(
        [(v, p) for v in versions(type_name) for p in FIXTURES[(type_name, v)] if _chargeable(p)],
        start=9001,
    ):
        data = _envelope(type_name, version, payload, order_id)

        assert event_consume(service=service, data=data) == Outcome.HANDLED
        effects.append(_effect(service, order_id))

    assert len(effects) == len(versions(type_name))
    assert all(effect == effects[0] for effect in effects), effects
    assert effects[0] is not None


def _effect(service: str, order_id: int) -> Any:
    """What a service made of an OrderCreated, without the order's id."""
    if service == "payment":
        payment = Payment.objects.get(order_id=order_id)
        assert payment.amount == Decimal("178.00")
        return (payment.status, payment.amount)
    if service == "inventory":
        reservation = Reservation.objects.get(order_id=order_id)
        return (reservation.state, reservation.product_id, reservation.quantity)
    return service


_V1_PAYLOADS = st.fixed_dictionaries(
    {
        "userId": st.integers(min_value=1, max_value=2**63 - 1),
        "productId": st.integers(min_value=1, max_value=2**63 - 1),
        "quantity": st.integers(min_value=1, max_value=10**6),
        "amount": st.decimals(min_value=0, max_value=10**10 - 1, places=2).map(
            lambda d: f"{d:.2f}"
        ),
        "paymentToken": st.from_regex(r"\Atok_(\*{4}[A-Za-z0-9_]{0,4}|[A-Za-z0-9_]{1,64})\Z"),
        "customerEmail": st.emails().filter(lambda e: len(e) <= 254),
    }
)


@given(payload=_V1_PAYLOADS)
def test_any_valid_v1_order_created_upcasts_to_a_v2_saying_the_same(payload):
    lifted = upcast("OrderCreated", 1, payload).model_dump(mode="json")

    assert lifted == {
        "customerId": payload["userId"],
        "productId": payload["productId"],
        "quantity": payload["quantity"],
        "amount": {"value": payload["amount"], "currency": "USD"},
        "paymentToken": payload["paymentToken"],
        "customerEmail": payload["customerEmail"],
    }
