"""/metrics for Prometheus: histograms in seconds, every known series present, live consumers."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from checkout_site.console.control import service_start, service_stop
from checkout_site.console.heartbeat import ALIVE_WITHIN_S
from services.bus.models import Delivery
from services.bus.registry import subscribers
from tests.conftest import wait_for
from tests.helpers import ARTICLE_ORDER, post_order, wait_drained, wait_terminal

pytestmark = pytest.mark.stack


def _scrape(client: Client) -> dict[str, object]:
    # The collector keeps its figures for a second, to spare the database a scrape storm.
    time.sleep(1.1)
    text = client.get("/metrics").content.decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(family, suffix: str = "", **labels: str) -> float:
    for s in family.samples:
        if s.name == family.name + suffix and s.labels == labels:
            return s.value
    raise KeyError((family.name + suffix, labels))


def test_latencies_are_histograms_in_seconds_that_count_every_delivery_and_order(
    stack, customer, product, admin_client
):
    ids = [post_order(Client()).json()["orderId"] for _ in range(2)]
    ids.append(
        post_order(Client(), {**ARTICLE_ORDER, "paymentToken": "tok_declined"}).json()["orderId"]
    )
    for order_id in ids:
        wait_terminal(order_id)
    wait_drained()

    families = _scrape(admin_client)

    handled = Delivery.objects.filter(status=Delivery.Status.HANDLED).count()
    for name in ("checkout_delivery_wait_seconds", "checkout_handler_seconds"):
        family = families[name]
        assert family.type == "histogram"
        buckets = [s for s in family.samples if s.name == f"{name}_bucket"]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), "cumulative buckets never go down"
        assert buckets[-1].labels == {"le": "+Inf"} and counts[-1] == handled
        assert _value(family, "_count") == handled and _value(family, "_sum") > 0
    orders = families["checkout_order_duration_seconds"]
    assert _value(orders, "_count") == 3
    assert 0 < _value(orders, "_sum") < 3 * 60


def test_a_status_no_order_has_is_reported_as_zero(stack, customer, product, admin_client):
    order_id = post_order(Client()).json()["orderId"]
    wait_terminal(order_id)

    families = _scrape(admin_client)

    assert _value(families["checkout_orders"], status="SHIPPED") == 1
    assert _value(families["checkout_orders"], status="CANCELLED") == 0
    assert _value(families["checkout_orders_created"], "_total", mode="sync") == 0
    assert _value(families["checkout_events_stored"], "_total", type="PaymentFailed") == 0


def test_a_queue_no_worker_consumes_shows_no_live_consumer_while_it_is_still_wanted(
    stack, admin_client
):
    def alive(queue: str) -> float:
        return _value(_scrape(admin_client)["checkout_queue_consumers_alive"], queue=queue)

    wait_for(lambda: all(alive(s.queue) >= 1 for s in subscribers().values()), timeout=20)
    service_stop(name="payment")
    try:
        wait_for(lambda: alive("payment") == 0, timeout=ALIVE_WITHIN_S + 10, interval=0.5)
        assert alive("inventory") >= 1
        state = admin_client.get("/console/api/state").json()
        payment = next(s for s in state["services"] if s["name"] == "payment")
        assert payment["running"] is False and payment["alive"] == 0
    finally:
        service_start(name="payment")
    wait_for(lambda: alive("payment") >= 1, timeout=ALIVE_WITHIN_S + 10, interval=0.5)
