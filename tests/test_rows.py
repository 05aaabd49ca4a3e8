"""The bus's hand-built writes (services/bus/rows.py) store what the ORM's would, field by field.

The suite runs on SQLite here and on PostgreSQL in CI, so both engines are held to it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from services.bus.models import Delivery, Event
from services.bus.rows import row_insert, row_upsert
from services.payment.models import PaymentInbox

pytestmark = pytest.mark.django_db


def _stored(model: type[models.Model], pk: Any) -> dict[str, Any]:
    row = model.objects.get(pk=pk)
    return {f.name: getattr(row, f.name) for f in model._meta.concrete_fields if not f.primary_key}


def _event_fields() -> dict[str, Any]:
    return {
        "type": "OrderCreated",
        "version": 2,
        "order_id": 7,
        "occurred_at": timezone.now(),
        "producer": "orders",
        "causation_id": uuid.uuid4(),
        "payload": {"customerId": 1, "amount": {"value": "1.00", "currency": "USD"}, "n": [1]},
        "metadata": {"traceparent": "00-ab-cd-01"},
        "mode": Event.Mode.SYNC,
        "published_at": timezone.now(),
    }


def test_an_event_is_stored_as_create_stores_it_and_gets_its_seq():
    fields = _event_fields()
    by_orm = Event.objects.create(**fields)

    by_hand = row_insert(Event(**fields))

    assert by_hand.seq == by_orm.seq + 1
    assert not by_hand._state.adding
    orm, hand = _stored(Event, by_orm.seq), _stored(Event, by_hand.seq)
    assert orm.pop("event_id") != hand.pop("event_id"), "each has its own default id"
    assert hand == orm
    assert Event.objects.get(seq=by_hand.seq).event_id == by_hand.event_id


def test_an_inbox_row_is_stored_as_create_stores_it_and_refuses_a_second_copy():
    event_id = uuid.uuid4()

    with transaction.atomic():
        row_insert(PaymentInbox(event_id=event_id, event_type="OrderCreated", order_id=7))
    stored = PaymentInbox.objects.get(pk=event_id)

    assert (stored.event_type, stored.order_id) == ("OrderCreated", 7)
    assert abs((timezone.now() - stored.handled_at).total_seconds()) < 5, "auto_now_add"
    with pytest.raises(IntegrityError), transaction.atomic():
        row_insert(PaymentInbox(event_id=event_id, event_type="OrderCreated", order_id=7))
    assert PaymentInbox.objects.count() == 1


def _delivery(event_id: uuid.UUID, **changes: Any) -> Delivery:
    now = timezone.now()
    fields = {
        "event_id": event_id,
        "service": "payment",
        "seq": 3,
        "event_type": "OrderCreated",
        "order_id": 7,
        "status": Delivery.Status.HANDLED,
        "attempts": 1,
        "faults": "",
        "received_at": now,
        "settled_at": now,
        "wait_ms": 1.5,
        "handler_ms": 0.25,
        **changes,
    }
    return Delivery(**fields)


UPDATED = ["status", "attempts", "faults", "settled_at", "wait_ms", "handler_ms"]


def test_a_delivery_upsert_inserts_like_bulk_create_and_then_updates_only_its_fields():
    orm_id, hand_id = uuid.uuid4(), uuid.uuid4()
    Delivery.objects.bulk_create(
        [_delivery(orm_id)],
        update_conflicts=True,
        unique_fields=["event_id", "service"],
        update_fields=UPDATED,
    )
    row_upsert(_delivery(hand_id), unique=["event_id", "service"], update=UPDATED)

    orm = _stored(Delivery, Delivery.objects.get(event_id=orm_id).pk)
    hand = _stored(Delivery, Delivery.objects.get(event_id=hand_id).pk)
    orm.pop("event_id"), hand.pop("event_id")
    for moment in ("received_at", "settled_at"):
        assert abs((orm.pop(moment) - hand.pop(moment)).total_seconds()) < 5
    assert hand == orm

    Delivery.objects.filter(event_id=hand_id).update(retries=2, error="boom")
    row_upsert(
        _delivery(hand_id, attempts=3, faults="+300 ms latency", seq=99),
        unique=["event_id", "service"],
        update=UPDATED,
    )

    again = Delivery.objects.get(event_id=hand_id)
    assert (again.attempts, again.faults) == (3, "+300 ms latency")
    # What the upsert does not name stays as the earlier attempts left it.
    assert (again.retries, again.error, again.seq) == (2, "boom", 3)
    assert Delivery.objects.filter(event_id=hand_id).count() == 1


def test_an_orders_history_reads_as_the_orm_reads_it():
    from services.bus.history import order_histories

    for order_id, kind in [(7, "OrderCreated"), (8, "OrderCreated"), (7, "PaymentProcessed")]:
        Event.objects.create(**{**_event_fields(), "order_id": order_id, "type": kind})
    last = Event.objects.order_by("-seq").first().seq

    for ids, up_to in [({7}, last), ({7, 8}, last), ({7}, last - 1), ({9}, last), (set(), last)]:
        orm = Event.objects.filter(order_id__in=ids, seq__lte=up_to).order_by("seq")
        expected = [tuple(r) for r in orm.values_list("order_id", "seq", "type", "mode")]
        assert order_histories(ids, up_to=up_to) == expected
    assert [t for _, _, t, _ in order_histories({7}, up_to=last)] == [
        "OrderCreated",
        "PaymentProcessed",
    ]


def _log_of(order_id: int) -> Any:
    return Event.objects.filter(order_id=order_id).values_list("type", "event_id", "occurred_at")


def _caused_by(causation_id: Any) -> Any:
    return Event.objects.filter(causation_id=causation_id).values_list("seq")


def test_a_compiled_select_answers_as_the_orm_does_converters_included(monkeypatch):
    from services.bus import rows

    for order_id, kind in [(7, "OrderCreated"), (7, "PaymentProcessed"), (8, "OrderCreated")]:
        Event.objects.create(**{**_event_fields(), "order_id": order_id, "type": kind})

    first = rows.rows_select(_log_of, 7)
    assert first == [tuple(r) for r in _log_of(7)]
    assert [type(r[1]) for r in first] == [uuid.UUID, uuid.UUID]  # as the ORM converts them
    assert first[0][2].tzinfo is not None

    # Later calls run the kept statement: nothing is compiled again.
    monkeypatch.setattr(rows, "_compiled", lambda *a, **k: pytest.fail("compiled again"))
    assert rows.rows_select(_log_of, 8) == [tuple(r) for r in _log_of(8)]
    assert rows.rows_select(_log_of, 9) == []


def test_a_select_whose_parameter_the_orm_adapts_is_run_by_the_orm_each_time():
    from django.db import connection

    from services.bus import rows

    cause = uuid.uuid4()
    stored = Event.objects.create(**{**_event_fields(), "causation_id": cause})

    assert rows.rows_select(_caused_by, cause) == [(stored.seq,)]
    assert rows.rows_select(_caused_by, uuid.uuid4()) == []
    assert rows._selects[(_caused_by, connection.vendor)] is None


def test_the_order_services_lock_is_in_its_compiled_statement(customer, product):
    from django.db import connection

    from orders.handlers import _order_status_locked, order_locked
    from orders.models import Order
    from services.bus import rows

    order = Order.objects.create(customer=customer, product=product, quantity=1, amount=1)
    with transaction.atomic():
        assert order_locked(order.pk) == "INITIATED"
        with pytest.raises(Order.DoesNotExist):
            order_locked(order.pk + 1000)
    sql = rows._selects[(_order_status_locked, connection.vendor)].sql
    if connection.vendor == "postgresql":
        assert sql.endswith("FOR NO KEY UPDATE")
    else:
        assert "FOR" not in sql  # SQLite has no row locks: one writer at a time


def test_every_hot_select_keeps_its_statement():
    """A builder whose parameters do not come out of the compiler as given would fall back to
    the ORM on every delivery, silently: each one the handlers use is held to it here."""
    from django.db import connection

    from orders.handlers import _order_log, _order_status_locked, _status_set, _stock_set
    from orders.models import OrderStatus
    from services.bus import rows
    from services.bus.history import _first_of_type
    from services.inventory.stock import _on_hand, _reservation_of, _stock_take
    from services.payment.payments import _payment_of

    calls = [
        (_order_status_locked, (1,)),
        (_order_log, (1,)),
        (_payment_of, (1,)),
        (_reservation_of, (1,)),
        (_on_hand, (1,)),
        (_first_of_type, (1, "OrderCreated")),
    ]
    updates = [
        (_status_set, (OrderStatus.CONFIRMED, 1)),  # what status_fold gives: an enum member
        (_stock_set, (3, 9, 1, 9)),
        (_stock_take, (1, 1, 1)),
    ]
    with transaction.atomic():
        for build, params in calls:
            rows.rows_select(build, *params)
        for build, params in updates:
            rows.rows_update(build, *params)
    vendor = connection.vendor
    assert [b.__name__ for b, _ in calls if rows._selects[(b, vendor)] is None] == []
    assert [b.__name__ for b, _ in updates if rows._updates[(b, vendor)] is None] == []


def test_a_row_by_its_key_is_the_instance_the_orm_builds(customer, product):
    from orders.models import Customer, Product
    from services.bus.rows import row_by_pk

    for model, pk in [(Customer, customer.pk), (Product, product.pk)]:
        by_hand, by_orm = row_by_pk(model, pk), model.objects.filter(pk=pk).first()
        fields = [f.attname for f in model._meta.concrete_fields]
        assert [getattr(by_hand, f) for f in fields] == [getattr(by_orm, f) for f in fields]
        assert not by_hand._state.adding and by_hand._state.db == "default"
    assert row_by_pk(Customer, 987654) is None


def _events_after_of_type(seq: int, type_name: str) -> Any:
    # Django sorts a filter's conditions by name: seq__gt, then type.
    return Event.objects.filter(type=type_name, seq__gt=seq).values_list("seq")


def _set_version(version: int, order_id: int) -> Any:
    return Event.objects.filter(order_id=order_id), {"version": version}


def _set_version_swapped(order_id: int, version: int) -> Any:
    return Event.objects.filter(order_id=order_id), {"version": version}


def test_a_compiled_update_changes_what_the_orms_would_and_counts_the_rows():
    from services.bus import rows

    for order_id in (7, 7, 8):
        Event.objects.create(**{**_event_fields(), "order_id": order_id})

    assert rows.rows_update(_set_version, 5, 7) == 2
    assert rows.rows_update(_set_version, 6, 8) == 1
    assert rows.rows_update(_set_version, 6, 9) == 0
    assert sorted(Event.objects.values_list("order_id", "version")) == [(7, 5), (7, 5), (8, 6)]


def test_parameters_out_of_the_statements_order_are_never_kept_even_when_equal():
    """A first call whose values happen to be equal cannot hide a builder's wrong order: the
    stand-ins show where each parameter goes."""
    from django.db import connection

    from services.bus import rows

    Event.objects.create(**{**_event_fields(), "order_id": 3, "version": 1})
    Event.objects.create(**{**_event_fields(), "order_id": 4, "version": 1})

    assert rows.rows_update(_set_version_swapped, 3, 3) == 1  # equal: the order cannot show
    assert rows._updates[(_set_version_swapped, connection.vendor)] is None
    assert rows.rows_update(_set_version_swapped, 4, 2) == 1  # still right, by the ORM
    assert Event.objects.get(order_id=4).version == 2
    assert Event.objects.get(order_id=3).version == 3

    seq = Event.objects.order_by("seq").first().seq
    assert rows.rows_select(_events_after_of_type, seq, "OrderCreated") != []
    assert rows._selects[(_events_after_of_type, connection.vendor)] is not None
