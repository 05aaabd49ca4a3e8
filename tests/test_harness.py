"""The test harness itself: a test off the stack is never served by the session's worker.

``services_restored`` starts every service after a stack test, and a start reaches every worker
on the broker. Before the harness paused the session worker again, the next test's order was
handled behind its back: its events were written after its flush, and once the flush deadlocked.
"""

import time

import pytest
from django.test import Client

from services.bus.models import Event
from tests.helpers import post_order

pytest_plugins = ["tests.console_fixtures"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("services_restored")
def test_a_stack_test_that_restores_the_services(stack):
    assert stack.process.poll() is None


@pytest.mark.django_db(transaction=True)
def test_the_next_test_off_the_stack_has_its_order_left_alone(customer, product):
    order_id = post_order(Client()).json()["orderId"]
    # The worker took an order's first event within a second when it still consumed.
    time.sleep(3)

    types = list(Event.objects.filter(order_id=order_id).values_list("type", flat=True))
    assert types == ["OrderCreated"]
