"""Faults on the real stack: workers killed with -9, Redis restarted with its data gone, every
event published three times, and a poison message. Each test ends with the books checked.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from checkout_site.console.consistency import consistency_check
from orders.models import Order, OrderInbox
from services.bus.models import DeadLetter, Event
from services.bus.outbox import outbox_flush
from services.bus.registry import subscriber
from services.bus.tasks import deliver
from services.payment.models import Payment
from tests.conftest import Worker, wait_for
from tests.fault_tools import (
    Relay,
    children_of,
    kill9,
    log_text,
    session_worker_paused,
    wait_books_clean,
    worker_kill_all,
)
from tests.helpers import ARTICLE_ORDER, post_order

pytestmark = [pytest.mark.stack, pytest.mark.django_db(transaction=True)]

SECRET_TOKEN = "tok_faultsSecret4242"
# A worker killed with -9 loses the messages it held (the broker keeps no unacked copy,
# settings: ack_emulation); the reconciler sends their events again, this soon after storing.
FAULT_ENV = {"CELERY_VISIBILITY_TIMEOUT": "5", "RECONCILE_AFTER_SECONDS": "4"}


def _mixed_order(i: int) -> dict[str, object]:
    """Most ship; some are declined; some ask the scarce product for more than is left."""
    if i % 7 == 3:
        return {**ARTICLE_ORDER, "paymentToken": "tok_declined"}
    if i % 5 == 1:
        return {**ARTICLE_ORDER, "productId": 457, "quantity": 3, "paymentToken": SECRET_TOKEN}
    return {**ARTICLE_ORDER, "quantity": 1 + i % 3, "paymentToken": SECRET_TOKEN}


def _place_all(bodies: list[dict[str, object]], spread_s: float) -> list[int]:
    def buy(body: dict[str, object]) -> int:
        try:
            time.sleep(random.uniform(0, spread_s))
            response = post_order(Client(), body)
            assert response.status_code == 202, response.content
            return response.json()["orderId"]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(buy, bodies))


@pytest.fixture
def catalog(customer, make_product):
    make_product(pk=456, stock=500)
    make_product(pk=457, stock=12, price="14.50")


def test_workers_killed_with_minus_9_under_load_lose_and_double_nothing(stack, catalog):
    workers = [Worker(f"faults-{n}") for n in "ab"]
    relay = Relay(**FAULT_ENV)
    kills = Counter()
    with session_worker_paused():
        try:
            for w in workers:
                w.start(**FAULT_ENV)
            relay.start()
            placed: list[int] = []
            placing = threading.Thread(
                target=lambda: placed.extend(
                    _place_all([_mixed_order(i) for i in range(40)], spread_s=5)
                )
            )
            placing.start()
            rng = random.Random(4)
            while placing.is_alive() or kills.total() < 8:
                time.sleep(rng.uniform(0.3, 0.9))
                victim = rng.choice(workers)
                pool = children_of(victim.process.pid)
                if rng.random() < 0.7 and pool:
                    kills["pool process"] += kill9(rng.choice(pool))
                else:
                    worker_kill_all(victim)
                    kills["whole worker"] += 1
                    victim.start(**FAULT_ENV)
            placing.join()
            assert len(placed) == 40

            report = wait_books_clean(placed, timeout=150)
        finally:
            relay.stop()
            for w in workers:
                w.stop()

    logs = log_text(*(w.log for w in workers), relay.log)
    lost_mid_task = logs.count("WorkerLostError")
    print(f"kills: {dict(kills)}, tasks lost mid-handling: {lost_mid_task}")
    assert kills["pool process"] >= 1 and kills["whole worker"] >= 1
    assert report.clean and report.in_flight == 0
    statuses = Counter(Order.objects.filter(pk__in=placed).values_list("status", flat=True))
    assert set(statuses) <= {"SHIPPED", "CANCELLED"} and statuses["SHIPPED"] > 0
    charged = Payment.objects.filter(status="CHARGED").count()
    assert charged == statuses["SHIPPED"]
    assert (
        Event.objects.filter(type="PaymentProcessed").count()
        == Payment.objects.exclude(status__in=["DECLINED", "VOID"]).count()
    )
    assert SECRET_TOKEN not in logs


@pytest.mark.own_redis
def test_redis_restarted_with_its_data_gone_loses_no_order(stack, catalog, embedded_redis):
    relay = Relay(RECONCILE_AFTER_SECONDS="3").start()
    try:
        before = _place_all([_mixed_order(i) for i in range(10)], spread_s=0.5)
        embedded_redis.stop()
        try:
            during = _place_all([_mixed_order(i) for i in range(10, 20)], spread_s=0.5)
            unsent = Event.objects.filter(order_id__in=during, published_at__isnull=True)
            assert unsent.count() == 10, "orders taken while Redis is down wait in the outbox"
        finally:
            embedded_redis.start()
            # This process's pooled broker connections died with Redis. Publishing retries on a
            # fresh one, Celery's remote control (ping, inspect) does not: later tests use it.
            from checkout_site.celery import app

            app._pool = None
        after = _place_all([_mixed_order(i) for i in range(20, 30)], spread_s=0.5)

        report = wait_books_clean(before + during + after, timeout=120)
    except AssertionError:
        print(log_text(stack.log)[-6000:], log_text(relay.log)[-3000:])
        raise
    finally:
        relay.stop()

    assert report.clean and report.in_flight == 0
    from checkout_site.celery import app

    with app.connection_for_write() as conn:
        replies = app.control.ping(timeout=2, connection=conn)
    assert any("checkout-test" in name for reply in replies for name in reply)
    assert (
        "reconciler sent" in relay.log.read_text()
        or not Event.objects.filter(order_id__in=before)
        .exclude(type__in=["OrderShipped", "OrderCancelled"])
        .exists()
    )


def test_every_event_published_three_times_while_in_flight_changes_nothing(stack, catalog):
    placed = _place_all([_mixed_order(i) for i in range(12)], spread_s=1)
    stop = threading.Event()

    def echo() -> None:
        seen: set[int] = set()
        try:
            while not stop.is_set():
                fresh = list(Event.objects.filter(order_id__in=placed).exclude(seq__in=seen))
                for _ in range(2):
                    outbox_flush(fresh)
                seen |= {e.seq for e in fresh}
                time.sleep(0.05)
        finally:
            connection.close()

    echoer = threading.Thread(target=echo)
    echoer.start()
    try:
        report = wait_books_clean(placed, timeout=90)
    finally:
        stop.set()
        echoer.join()
    _wait_idle()

    assert consistency_check(deadline_s=0).clean
    assert report.clean
    # The order service's inbox: one row per event it handled, however often that event came.
    handled = OrderInbox.objects.count()
    subscribed = list(subscriber("orders").handles)
    assert handled == Event.objects.filter(order_id__in=placed, type__in=subscribed).count()


def test_a_poison_message_is_parked_visible_redriven_and_blocks_nothing(
    stack, catalog, admin_client, settings
):
    poison_order = 90_001
    envelope = {
        "seq": 10**9,
        "eventId": str(uuid.uuid4()),
        "type": "PaymentProcessed",
        "version": 1,
        "orderId": poison_order,
        "occurredAt": timezone.now().isoformat(),
        "producer": "payment",
        "causationId": None,
        "payload": {"paymentId": 1, "amount": "89.00", "tokenLast4": "c123"},
    }
    # The order service cannot handle it: the order it names is not there (yet).
    deliver.apply_async(args=("orders", envelope), queue="orders")
    healthy = post_order(Client()).json()["orderId"]

    letter = wait_for(
        lambda: DeadLetter.objects.filter(event_id=envelope["eventId"]).first(), timeout=60
    )
    shipped_at = Event.objects.get(order_id=healthy, type="OrderShipped").occurred_at
    assert shipped_at < letter.created_at, "the healthy order waited for the poison"
    assert letter.attempts == settings.DELIVERY_MAX_RETRIES + 1
    assert "DoesNotExist" in letter.error
    page = admin_client.get("/admin/bus/deadletter/").content.decode()
    assert "PaymentProcessed" in page and str(letter.attempts) in page
    detail = admin_client.get(f"/admin/bus/deadletter/{letter.pk}/change/").content.decode()
    assert "DoesNotExist" in detail

    # The cause is fixed: the order is there now. One admin action sends the event again.
    healthy_order = Order.objects.get(pk=healthy)
    healthy_order.pk, healthy_order.idempotency_key = poison_order, None
    healthy_order.save(force_insert=True)
    response = admin_client.post(
        "/admin/bus/deadletter/", {"action": "redrive", "_selected_action": [letter.pk]}
    )
    assert response.status_code == 302

    wait_for(lambda: OrderInbox.objects.filter(event_id=envelope["eventId"]).exists())
    letter.refresh_from_db()
    assert letter.redriven_at is not None
    assert DeadLetter.objects.count() == 1
    admin_client.post(
        "/admin/bus/deadletter/", {"action": "redrive", "_selected_action": [letter.pk]}
    )
    time.sleep(1)
    assert DeadLetter.objects.count() == 1


def _wait_idle() -> None:
    from services.bus.broker import queue_depths

    wait_for(lambda: sum(queue_depths().values()) == 0, timeout=30, interval=0.2)


def test_concurrent_orders_for_scarce_stock_never_confirm_more_than_there_is(stack, customer):
    from orders.models import Product
    from services.inventory.models import Stock

    Product.objects.create(pk=460, name="Last few", price="5.00", stock=10)
    Stock.objects.create(product_id=460, on_hand=10, initial=10)
    bodies = [
        {**ARTICLE_ORDER, "productId": 460, "quantity": 1 + i % 3, "paymentToken": SECRET_TOKEN}
        for i in range(30)
    ]
    extra = Worker("faults-race")
    try:
        # A second worker doubles the consumers racing for the stock.
        extra.start()
        placed = _place_all(bodies, spread_s=0.2)
        report = wait_books_clean(placed, timeout=120)
    finally:
        extra.stop()

    shipped = Order.objects.filter(pk__in=placed, status="SHIPPED")
    confirmed = sum(shipped.values_list("quantity", flat=True))
    stock = Stock.objects.get(product_id=460)
    assert report.clean
    assert 0 <= stock.on_hand == 10 - confirmed
    assert confirmed >= 8, "stock left on the shelf while orders were refused"
    assert Order.objects.filter(pk__in=placed, status="CANCELLED").count() >= 10
