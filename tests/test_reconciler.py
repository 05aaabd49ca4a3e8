"""The reconciler: which events it sends again, and that sending them finishes a stuck order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from orders.models import OrderStatus
from services.bus.models import DeadLetter, Event
from services.bus.reconciler import Reconciler, events_reconcile, events_unhandled
from services.payment.models import PaymentInbox
from tests.conftest import _queues_purge, wait_for
from tests.fault_tools import session_worker_paused
from tests.helpers import post_order, wait_terminal


def _published_long_ago(order_id: int) -> Event:
    Event.objects.filter(order_id=order_id).update(
        published_at=timezone.now(), occurred_at=timezone.now() - timedelta(seconds=120)
    )
    return Event.objects.get(order_id=order_id, type="OrderCreated")


@pytest.mark.django_db
def test_an_overdue_event_is_due_for_every_subscriber_that_has_not_handled_it(
    client, customer, product
):
    created = _published_long_ago(post_order(client).json()["orderId"])
    PaymentInbox.objects.create(
        event_id=created.event_id, event_type=created.type, order_id=created.order_id
    )

    due = {service for service, event in events_unhandled(after_s=30) if event == created}

    assert due == {"inventory"}


def _shipped_long_ago() -> Event:
    long_ago = timezone.now() - timedelta(seconds=120)
    return Event.objects.create(
        type="OrderShipped",
        version=1,
        order_id=1,
        occurred_at=long_ago,
        producer="notification",
        payload={"trackingRef": "CL-00000001"},
        published_at=long_ago,
    )


def _loyalty_due() -> list[int]:
    return [event.seq for service, event in events_unhandled(after_s=30) if service == "loyalty"]


@pytest.mark.django_db
def test_a_service_is_sent_only_what_it_is_subscribed_to_from_where_its_subscription_began():
    from checkout_site.console.levers import LeverWish, lever_set

    before = _shipped_long_ago()
    assert _loyalty_due() == [], "loyalty ships subscribed to nothing"

    lever_set(LeverWish("subscription", "loyalty", "on", event_type="OrderShipped"))
    after = _shipped_long_ago()
    assert _loyalty_due() == [after.seq], "joined live: what was stored before is not its"

    lever_set(LeverWish("subscription", "loyalty", "off", event_type="OrderShipped"))
    assert _loyalty_due() == []
    assert before.seq < after.seq


@pytest.mark.django_db
def test_a_recent_or_unpublished_event_is_left_to_the_consumers_and_the_relay(
    client, customer, product
):
    order_id = post_order(client).json()["orderId"]
    assert events_unhandled(after_s=0) == [], "unpublished: the relay's job"

    Event.objects.filter(order_id=order_id).update(published_at=timezone.now())

    assert events_unhandled(after_s=30) == []
    # OrderCreated, for payment and inventory.
    assert len(events_unhandled(after_s=0)) == 2


@pytest.mark.django_db
def test_a_request_response_orders_events_are_never_sent(client, customer, product):
    client.post(
        "/orders/sync",
        data={"userId": 123, "productId": 456, "quantity": 1, "paymentToken": "tok_abc123"},
        content_type="application/json",
    )
    Event.objects.update(occurred_at=timezone.now() - timedelta(seconds=120))

    assert Event.objects.count() >= 5
    assert events_unhandled(after_s=0) == []


@pytest.mark.django_db
def test_a_parked_event_waits_for_its_redrive(client, customer, product):
    created = _published_long_ago(post_order(client).json()["orderId"])
    letter = DeadLetter.objects.create(
        service="payment",
        event_id=created.event_id,
        event_type=created.type,
        order_id=created.order_id,
        envelope={},
        error="boom",
        attempts=6,
    )

    assert "payment" not in {s for s, e in events_unhandled(after_s=30) if e == created}
    DeadLetter.objects.filter(pk=letter.pk).update(redriven_at=timezone.now())
    assert "payment" in {s for s, e in events_unhandled(after_s=30) if e == created}


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
def test_an_order_whose_messages_the_broker_lost_is_finished_by_the_reconciler(
    stack, customer, product
):
    with session_worker_paused():
        order_id = post_order(Client()).json()["orderId"]
        _queues_purge()  # the broker forgets them, as a restarted Redis would
    wait_for(lambda: Event.objects.get(order_id=order_id).published_at)  # marked by its thread

    reconciler = Reconciler(after_s=0)
    first = reconciler.run()
    order = wait_terminal(order_id, timeout=30)

    assert {service for service, _ in first.sent} == {"payment", "inventory"}
    assert order.status == OrderStatus.SHIPPED
    assert events_reconcile(after_s=0).sent == []
