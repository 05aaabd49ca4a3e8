"""The operator's record: an entry for every lever pulled and every fault switched on or off
(from the API and from the console's forms), the orders each entry touched, and the marks it
puts on the console's charts and on an order's live page."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from checkout_site.asgi import application
from checkout_site.console.levers import LeverWish, lever_set, levers_document
from checkout_site.console.models import Fault, LeverChange, RecordEntry
from checkout_site.console.record import orders_touched_now, record_touching
from orders.models import Order, OrderStatus
from services.bus.models import Event

pytestmark = pytest.mark.django_db

SAME_ORIGIN = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]


@pytest.fixture(autouse=True)
def _unsafe_levers_allowed(settings):
    settings.CHECKOUT_UNSAFE_LEVERS = True


def _csrf(client: Client) -> dict[str, str]:
    return {"X-CSRFToken": client.cookies["csrftoken"].value}


def _pull(client: Client, body: dict[str, Any]) -> Any:
    return client.post(
        "/control/levers", data=body, content_type="application/json", headers=_csrf(client)
    )


def _fault_on(client: Client, body: dict[str, Any]) -> Any:
    return client.post(
        "/control/faults", data=body, content_type="application/json", headers=_csrf(client)
    )


def _form(client: Client, path: str, data: dict[str, str] | None = None) -> Any:
    return client.post(
        path, {"csrfmiddlewaretoken": client.cookies["csrftoken"].value, **(data or {})}
    )


def _order(customer: Any, product: Any, *, status: str = OrderStatus.INITIATED) -> Order:
    return Order.objects.create(
        customer=customer,
        product=product,
        quantity=1,
        amount=Decimal("89.00"),
        payment_token_masked="tok_…123",
        status=status,
    )


def _event(order: Order, type_: str, at: datetime) -> Event:
    return Event.objects.create(
        type=type_, version=1, order_id=order.pk, occurred_at=at, producer="orders", payload={}
    )


def _entry(at: datetime, label: str = "idempotency off at payment", **fields: Any) -> RecordEntry:
    return RecordEntry.objects.create(
        action=RecordEntry.Action.LEVER, label=label, at=at, by="operator", **fields
    )


# --- What gets an entry -------------------------------------------------------------------------


def test_a_lever_pull_is_an_entry_with_who_and_when_and_the_lever_keeps_its_state(staff_client):
    response = _pull(staff_client, {"lever": "idempotency", "service": "payment", "value": "off"})

    assert response.status_code == 200
    entry = RecordEntry.objects.get()
    change = LeverChange.objects.get()
    assert (entry.action, entry.label, entry.by) == (
        "lever",
        "idempotency off at payment",
        "operator",
    )
    assert entry.at == change.changed_at
    assert entry.lever_change == change
    assert levers_document()["idempotency"]["payment"] == "off"


def test_a_fault_switched_on_and_off_through_the_api_is_two_entries(staff_client):
    created = _fault_on(staff_client, {"service": "payment", "kind": "duplicate", "orderId": 42})
    assert created.status_code == 201
    fault_id = created.json()["id"]

    removed = staff_client.delete(f"/control/faults/{fault_id}", headers=_csrf(staff_client))

    assert removed.status_code == 204
    on, off = RecordEntry.objects.order_by("id")
    assert (on.action, on.label, on.order_id, on.fault_id) == (
        "fault_on",
        "fault on: duplicate delivery at payment (order 42)",
        42,
        fault_id,
    )
    assert (off.action, off.label, off.by) == (
        "fault_off",
        "fault off: duplicate delivery at payment (order 42)",
        "operator",
    )
    assert not Fault.objects.exists()


def test_the_console_forms_record_a_fault_on_a_fault_off_and_what_a_reset_puts_back(staff_client):
    _form(
        staff_client,
        "/console/faults",
        {"service": "notification", "kind": "latency", "value": "250"},
    )
    fault = Fault.objects.get()
    _form(staff_client, f"/console/faults/{fault.pk}/off")
    _form(staff_client, "/console/faults", {"service": "payment", "kind": "decline"})
    lever_set(LeverWish(lever="delivery", service="inventory", value="at-most-once"), by="operator")

    _form(staff_client, "/console/reset")

    labels = list(RecordEntry.objects.order_by("id").values_list("label", flat=True))
    assert labels == [
        "fault on: +250 ms latency at notification",
        "fault off: +250 ms latency at notification",
        "fault on: forced decline at payment",
        "delivery at-most-once at inventory",
        "delivery at-least-once at inventory",
        "fault off: forced decline at payment",
    ]
    assert set(RecordEntry.objects.values_list("by", flat=True)) == {"operator"}
    assert levers_document()["delivery"]["inventory"] == "at-least-once"


@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda c: _pull(c, {"lever": "idempotency", "service": "payment", "value": "maybe"}), 422),
        (lambda c: _pull(c, {"lever": "schema", "eventType": "OrderCreated", "version": 9}), 422),
        (lambda c: _fault_on(c, {"service": "payment", "kind": "gremlins"}), 422),
        (lambda c: _fault_on(c, {"service": "inventory", "kind": "decline"}), 422),
        (lambda c: _fault_on(c, {"service": "payment", "kind": "latency", "value": -5}), 422),
        (lambda c: c.delete("/control/faults/999", headers=_csrf(c)), 404),
    ],
)
def test_bad_input_is_refused_and_records_nothing(staff_client, send, status):
    response = send(staff_client)

    assert response.status_code == status
    assert response.json()["message"]
    assert not RecordEntry.objects.exists()


def test_a_bad_console_form_records_nothing(staff_client):
    _form(
        staff_client, "/console/faults", {"service": "payment", "kind": "failure", "value": "nan"}
    )
    _form(staff_client, "/console/faults/999/off")
    _form(staff_client, "/console/faults/99999999999999999999/off")

    assert not Fault.objects.exists()
    assert not RecordEntry.objects.exists()


# --- Which orders an entry touched ----------------------------------------------------------------


def test_an_order_finished_before_the_change_is_not_touched_one_in_flight_is(customer, product):
    t0 = timezone.now() - timedelta(minutes=10)
    finished = _order(customer, product, status=OrderStatus.SHIPPED)
    _event(finished, "OrderCreated", t0)
    _event(finished, "OrderShipped", t0 + timedelta(seconds=2))
    in_flight = _order(customer, product, status=OrderStatus.CONFIRMED)
    _event(in_flight, "OrderCreated", t0 + timedelta(seconds=3))
    later = _order(customer, product)
    _event(later, "OrderCreated", t0 + timedelta(seconds=9))

    change = _entry(t0 + timedelta(seconds=5))

    assert record_touching(finished.pk) == []
    assert record_touching(in_flight.pk) == [change]
    assert record_touching(later.pk) == [], "the change came before the order's first event"


def test_an_order_touched_while_in_flight_stays_touched_once_it_has_finished(customer, product):
    t0 = timezone.now() - timedelta(minutes=10)
    order = _order(customer, product, status=OrderStatus.CANCELLED)
    _event(order, "OrderCreated", t0)
    _event(order, "OrderCancelled", t0 + timedelta(seconds=4))
    during = _entry(t0 + timedelta(seconds=1))
    _entry(t0 + timedelta(seconds=6), label="idempotency on at payment")

    assert record_touching(order.pk) == [during]


def test_an_entry_that_names_the_order_touches_it_whenever_it_happened(customer, product):
    t0 = timezone.now() - timedelta(minutes=10)
    order = _order(customer, product, status=OrderStatus.SHIPPED)
    _event(order, "OrderCreated", t0)
    _event(order, "OrderShipped", t0 + timedelta(seconds=1))
    named = _entry(
        t0 + timedelta(minutes=5), label="fault on: x at payment (order)", order_id=order.pk
    )
    _entry(
        t0 + timedelta(minutes=5), label="fault on: x at payment (another)", order_id=order.pk + 1
    )
    # A fault for another order, switched on while this one was in flight, is not this one's.
    _entry(
        t0 + timedelta(seconds=0.5), label="fault on: y at payment (another)", order_id=order.pk + 1
    )

    assert record_touching(order.pk) == [named]


def test_the_order_record_endpoint_lists_the_marks_in_time_order_with_the_username_only(
    staff_client, customer, product
):
    order = _order(customer, product)
    _event(order, "OrderCreated", timezone.now() - timedelta(seconds=30))
    _pull(staff_client, {"lever": "idempotency", "service": "payment", "value": "off"})
    _fault_on(staff_client, {"service": "payment", "kind": "duplicate", "orderId": order.pk})

    body = Client().get(f"/orders/{order.pk}/record").json()

    assert body["orderId"] == order.pk
    assert [e["label"] for e in body["entries"]] == [
        "idempotency off at payment",
        f"fault on: duplicate delivery at payment (order {order.pk})",
    ]
    assert {e["by"] for e in body["entries"]} == {"operator"}
    assert "@" not in str(body), "an operator's e-mail address left the server"


@pytest.mark.parametrize("path", ["/orders/4242/record", "/orders/99999999999999999999/record"])
def test_the_order_record_of_an_unknown_order_is_a_404(db, path):
    response = Client().get(path)

    assert response.status_code == 404
    assert response.json()["error"] == "unknown_order"


def test_a_change_goes_live_to_the_orders_in_flight_or_to_the_one_it_names(customer, product):
    t0 = timezone.now() - timedelta(seconds=20)
    shipped = _order(customer, product, status=OrderStatus.SHIPPED)
    _event(shipped, "OrderCreated", t0)
    _event(shipped, "OrderShipped", t0 + timedelta(seconds=1))
    flying = _order(customer, product, status=OrderStatus.INITIATED)
    _event(flying, "OrderCreated", t0)

    assert orders_touched_now(_entry(timezone.now())) == [flying.pk]
    named = _entry(timezone.now(), order_id=shipped.pk)
    assert orders_touched_now(named) == [shipped.pk], "a change for one order is its alone"


# --- The marks on the pages -----------------------------------------------------------------------


def test_the_console_chart_figures_carry_the_record_entries_of_their_window(staff_client):
    _entry(timezone.now() - timedelta(minutes=5), label="long before the window")
    _pull(staff_client, {"lever": "delivery", "service": "payment", "value": "at-most-once"})

    metrics = staff_client.get("/console/api/metrics").json()
    state = staff_client.get("/console/api/state").json()

    assert [e["label"] for e in metrics["record"]] == ["delivery at-most-once at payment"]
    start = datetime.fromisoformat(metrics["throughput"]["start"])
    assert start <= datetime.fromisoformat(metrics["record"][0]["at"])
    assert datetime.fromisoformat(metrics["at"]) >= start
    assert [e["label"] for e in state["record"]] == [
        "delivery at-most-once at payment",
        "long before the window",
    ]


def test_the_console_home_lists_the_record(staff_client):
    _fault_on(staff_client, {"service": "payment", "kind": "crash"})

    page = staff_client.get("/console/").content.decode()

    assert "fault on: worker crash at payment" in page


@pytest.mark.django_db(transaction=True)
def test_a_lever_pulled_while_an_order_page_is_open_reaches_its_socket(customer, product):
    order = _order(customer, product)
    _event(order, "OrderCreated", timezone.now())

    async def scenario() -> list[dict[str, Any]]:
        socket = WebsocketCommunicator(application, f"/ws/orders/{order.pk}/", headers=SAME_ORIGIN)
        connected, _ = await socket.connect(timeout=5)
        assert connected
        try:
            replayed = await socket.receive_json_from(timeout=10)
            await database_sync_to_async(lever_set)(
                LeverWish(lever="idempotency", service="inventory", value="constraint-only"),
                by="operator",
            )
            notice = await socket.receive_json_from(timeout=10)
        finally:
            await socket.disconnect()
        return [replayed, notice]

    replayed, notice = async_to_sync(scenario)()

    assert replayed["kind"] == "event"
    assert notice["kind"] == "record"
    assert notice["entry"]["label"] == "idempotency constraint-only at inventory"
    assert notice["entry"]["by"] == "operator"
    assert notice["entry"]["id"] == RecordEntry.objects.get().pk
