"""A database made before the bus took over the event log migrates forward with its rows."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

# The last migrations before the event log moved to the bus and the console got its app.
BEFORE = [("orders", "0001_initial"), ("bus", "0002_console")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_orders_events_and_faults_made_before_the_move_are_all_there_after_it():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = _migrate(BEFORE)
    try:
        customer = old.get_model("orders", "Customer").objects.create(name="Ada", email="a@x.io")
        product = old.get_model("orders", "Product").objects.create(
            name="Keyboard", price=Decimal("89.00"), stock=5
        )
        Order = old.get_model("orders", "Order")
        orders = {
            mode: Order.objects.create(
                customer=customer,
                product=product,
                quantity=1,
                amount=Decimal("89.00"),
                payment_token_masked="tok_****c123",
                mode=mode,
            )
            for mode in ("events", "sync")
        }
        OldEvent = old.get_model("orders", "Event")
        ids = {}
        for mode, order in orders.items():
            ids[mode] = uuid.uuid4()
            OldEvent.objects.create(
                event_id=ids[mode],
                type="OrderCreated",
                version=1,
                order=order,
                occurred_at=timezone.now(),
                producer="orders",
                payload={"quantity": 1},
            )
        old.get_model("bus", "Fault").objects.create(service="payment", kind="decline")
        old.get_model("bus", "ServiceState").objects.create(service="notification", running=False)
    finally:
        new = _migrate(leaves)

    Event = new.get_model("bus", "Event")
    assert {(e.event_id, e.order_id, e.mode) for e in Event.objects.all()} == {
        (ids["events"], orders["events"].pk, "events"),
        (ids["sync"], orders["sync"].pk, "sync"),
    }
    assert Event.objects.get(event_id=ids["events"]).payload == {"quantity": 1}
    assert list(new.get_model("console", "Fault").objects.values_list("service", "kind")) == [
        ("payment", "decline")
    ]
    assert (
        new.get_model("console", "ServiceState").objects.get(service="notification").running
        is False
    )
    # No key to the order any more: the log may hold an order id the order table does not.
    Event.objects.create(
        type="PaymentProcessed",
        version=1,
        order_id=orders["events"].pk + 1000,
        occurred_at=timezone.now(),
        producer="payment",
        payload={},
    )
    assert Event.objects.count() == 3
