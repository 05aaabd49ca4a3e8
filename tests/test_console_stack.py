"""The console's levers on the real stack: stopping a service at the broker, injected faults,
the delivery record, and /metrics matching the database."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from checkout_site.console.control import consumers_by_worker, service_start, service_stop
from checkout_site.console.faults import CACHE_SECONDS, fault_add, fault_remove
from orders.models import Order, OrderStatus
from services.bus.broker import queue_depths
from services.bus.models import DeadLetter, Delivery
from services.bus.redrive import dead_letters_redrive
from services.bus.registry import subscribers
from services.inventory.models import Reservation, Stock
from services.payment.models import Payment
from tests.conftest import Worker, wait_for
from tests.helpers import ARTICLE_ORDER, event_types, post_order, wait_drained, wait_terminal

pytest_plugins = ["tests.console_fixtures"]

pytestmark = [
    pytest.mark.stack,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("services_restored"),
]


def _faults_reach_the_workers() -> None:
    time.sleep(CACHE_SECONDS + 0.3)


def _status(order_id: int) -> str:
    return Order.objects.get(pk=order_id).status


def _consumed_queues() -> set[str]:
    return {q for queues in consumers_by_worker().values() for q in queues}


def test_a_stopped_payment_service_leaves_the_order_initiated_with_stock_reserved(
    stack, client, customer, product
):
    service_stop(name="payment")
    wait_for(lambda: "payment" not in _consumed_queues())

    order_id = post_order(client).json()["orderId"]
    wait_for(lambda: Reservation.objects.filter(order_id=order_id, state="RESERVED").exists())
    wait_for(lambda: queue_depths()["payment"] == 1)
    time.sleep(0.5)
    assert _status(order_id) == OrderStatus.INITIATED
    assert not Payment.objects.filter(order_id=order_id).exists()
    assert Stock.objects.get(product_id=456).on_hand == 49

    service_start(name="payment")
    assert wait_terminal(order_id).status == OrderStatus.SHIPPED
    assert queue_depths()["payment"] == 0
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.CHARGED


def test_a_worker_that_starts_while_a_service_is_stopped_does_not_consume_its_queue(stack):
    service_stop(name="notification")
    late = Worker("console-late", queues="notification,payment").start()
    try:
        queues = wait_for(lambda: consumers_by_worker().get(f"console-late@{_host()}"))
        assert queues == ["payment"]

        service_start(name="notification")
        wait_for(
            lambda: (
                consumers_by_worker().get(f"console-late@{_host()}") == ["notification", "payment"]
            )
        )
    finally:
        late.stop()


def _host() -> str:
    import socket

    return socket.gethostname()


def test_a_forced_decline_cancels_the_order_and_says_it_was_injected(
    stack, client, customer, product
):
    fault_add(service="payment", kind="decline")
    _faults_reach_the_workers()

    order = wait_terminal(post_order(client).json()["orderId"])

    assert order.status == OrderStatus.CANCELLED
    payment = Payment.objects.get(order_id=order.pk)
    assert payment.status == Payment.Status.DECLINED
    assert "injected fault" in payment.reason
    assert Stock.objects.get(product_id=456).on_hand == 50
    delivery = Delivery.objects.get(order_id=order.pk, service="payment", event_type="OrderCreated")
    assert "forced decline" in delivery.faults


def test_forced_out_of_stock_for_one_order_leaves_the_others_alone(
    stack, client, customer, product
):
    service_stop(name="inventory")
    hit = post_order(client).json()["orderId"]
    spared = post_order(client).json()["orderId"]
    fault_add(service="inventory", kind="out_of_stock", order_id=hit)
    _faults_reach_the_workers()
    service_start(name="inventory")

    assert wait_terminal(hit).status == OrderStatus.CANCELLED
    assert wait_terminal(spared).status == OrderStatus.SHIPPED
    assert "InventoryRejected" in event_types(hit)
    assert Stock.objects.get(product_id=456).on_hand == 49
    assert Payment.objects.get(order_id=hit).status in (
        Payment.Status.REFUNDED,
        Payment.Status.VOID,
    )


def test_added_latency_is_noted_on_the_delivery_it_slowed(stack, client, customer, product):
    fault_add(service="notification", kind="latency", value=300)
    _faults_reach_the_workers()

    order = wait_terminal(post_order(client).json()["orderId"])

    slowed = Delivery.objects.filter(order_id=order.pk, service="notification")
    assert slowed.count() == 2  # the two halves of the join
    assert all("+300 ms latency" in d.faults for d in slowed)
    assert not Delivery.objects.filter(order_id=order.pk, service="payment").exclude(faults="")


def test_failures_are_retried_then_dead_lettered_and_a_redrive_completes_the_order(
    stack, client, customer, product
):
    fault = fault_add(service="payment", kind="failure", value=1.0)
    _faults_reach_the_workers()
    order_id = post_order(client).json()["orderId"]

    letter = wait_for(lambda: DeadLetter.objects.filter(order_id=order_id).first(), timeout=40)
    assert letter.service == "payment" and "InjectedFailure" in letter.error
    delivery = Delivery.objects.get(order_id=order_id, service="payment")
    assert delivery.status == Delivery.Status.DEAD
    assert delivery.retries == letter.attempts - 1 >= 1
    assert _status(order_id) == OrderStatus.INITIATED

    fault_remove(fault_id=fault.pk)
    _faults_reach_the_workers()
    assert dead_letters_redrive(DeadLetter.objects.filter(pk=letter.pk)) == 1

    assert wait_terminal(order_id).status == OrderStatus.SHIPPED
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.HANDLED
    assert Payment.objects.filter(order_id=order_id).count() == 1


def test_metrics_parse_and_their_counters_match_the_database_after_a_run(
    stack, customer, product, admin_client
):
    fault_add(service="payment", kind="duplicate")
    _faults_reach_the_workers()
    client = Client()
    ids = [post_order(client).json()["orderId"] for _ in range(3)]
    ids.append(
        post_order(client, {**ARTICLE_ORDER, "paymentToken": "tok_declined"}).json()["orderId"]
    )
    for order_id in ids:
        wait_terminal(order_id)
    wait_drained()

    text = admin_client.get("/metrics").content.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    for name, service in subscribers().items():
        handled_in_inbox = service.inbox.objects.count()
        assert sample("checkout_deliveries_handled_total", service=name) == handled_in_inbox
    # Payment receives OrderCreated once per order, each sent twice by the fault.
    assert sample("checkout_deliveries_duplicate_total", service="payment") == 4
    assert sample("checkout_deliveries_duplicate_total", service="inventory") == 0
    assert sample("checkout_deliveries_dead_lettered_total", service="payment") == 0
    assert sample("checkout_orders_created_total", mode="events") == 4
    assert sample("checkout_orders", status="SHIPPED") == 3
    assert sample("checkout_orders", status="CANCELLED") == 1
    assert sample("checkout_events_stored_total", type="OrderCreated") == 4
    assert sample("checkout_queue_depth", queue="payment") == 0
    assert sample("checkout_faults_active", service="payment", kind="duplicate") == 1
    assert Payment.objects.count() == 4
    assert Stock.objects.get(product_id=456).on_hand == 47


def test_a_stop_the_broker_cannot_carry_changes_nothing(stack, admin_client, broker_proxy):
    from checkout_site.console.models import ServiceState

    admin_client.get("/console/")
    broker_proxy.stop()
    try:
        response = admin_client.post("/control/services/notification/stop")
    finally:
        broker_proxy.start()

    assert response.status_code == 503
    assert response.json()["error"] == "broker_unreachable"
    assert not ServiceState.objects.filter(running=False).exists()

    def still_consumed() -> bool:
        try:
            return "notification" in _consumed_queues()
        except Exception:
            return False  # the pool's connections from before the cut are closed; try again

    wait_for(still_consumed, timeout=20, interval=0.5)
