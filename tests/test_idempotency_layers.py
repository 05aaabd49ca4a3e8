"""The layers of idempotency, through the real consumer, under a policy the test hands the bus:
a second delivery of the same event is dropped by the inbox (every layer), fails on the
database's constraint (only the constraint left), or repeats the effect (no layer), for each
service's effect."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.db import IntegrityError

from orders.contract import OrderRequest
from orders.placement import order_place
from services.bus import hooks
from services.bus.consumer import Outcome, event_consume
from services.bus.models import Delivery, Event
from services.inventory.models import Reservation, Stock
from services.notification.models import SentNotification
from services.payment.models import Payment, PaymentInbox
from services.payment.payments import payment_charge
from tests.bus_sim import InProcessBus

pytestmark = pytest.mark.django_db


CONSTRAINT_ONLY = hooks.Policy(inbox=False, effect_checked=False, note="constraint only")
NOTHING = hooks.Policy(inbox=False, effect_checked=False, effect_unique=False)


@pytest.fixture
def policy() -> Iterator[Callable[[str, hooks.Policy], None]]:
    """Hand the bus a policy for one service, as the console's levers would."""
    chosen: dict[str, hooks.Policy] = {}
    before = list(hooks._policy)
    hooks.policy_use(lambda service: chosen.get(service, hooks.DEFAULT_POLICY))
    yield chosen.__setitem__
    hooks._policy[:] = before


@pytest.fixture
def created(customer, product) -> Event:
    request = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
    order, _ = order_place(request=request)
    return Event.objects.get(order_id=order.pk, type="OrderCreated")


def _twice(service: str, event: Event) -> tuple[Outcome, Outcome]:
    return (
        event_consume(service=service, data=event.envelope()),
        event_consume(service=service, data=event.envelope(), attempt=2),
    )


def test_on_the_inbox_drops_the_second_delivery(created):
    assert _twice("payment", created) == (Outcome.HANDLED, Outcome.DUPLICATE)

    assert Payment.objects.filter(order_id=created.order_id).count() == 1
    assert Delivery.objects.get(service="payment", event_id=created.event_id).duplicates == 1


def test_with_only_the_constraint_left_it_refuses_the_second_charge(created, policy):
    policy("payment", CONSTRAINT_ONLY)

    assert event_consume(service="payment", data=created.envelope()) == Outcome.HANDLED
    with pytest.raises(IntegrityError):
        event_consume(service="payment", data=created.envelope(), attempt=2)

    assert Payment.objects.filter(order_id=created.order_id).count() == 1
    assert not Delivery.objects.filter(service="payment", duplicates__gt=0).exists()
    delivery = Delivery.objects.get(service="payment", event_id=created.event_id)
    assert "constraint only" in delivery.faults


def test_with_no_layer_left_a_second_delivery_charges_again(created, policy):
    policy("payment", NOTHING)

    assert _twice("payment", created) == (Outcome.HANDLED, Outcome.HANDLED)

    payments = Payment.objects.filter(order_id=created.order_id)
    assert [p.status for p in payments] == ["CHARGED", "CHARGED"]
    assert not any(p.guarded for p in payments)
    assert not PaymentInbox.objects.exists()


def test_with_no_layer_left_inventory_takes_the_stock_twice(created, policy):
    policy("inventory", NOTHING)

    _twice("inventory", created)

    assert Stock.objects.get(product_id=456).on_hand == 48
    assert Reservation.objects.filter(order_id=created.order_id, state="RESERVED").count() == 2


def test_with_no_layer_left_notification_sends_the_email_twice(created, policy, mailoutbox):
    policy("notification", NOTHING)
    InProcessBus(order_ids=[created.order_id]).drain()
    shipped = Event.objects.get(order_id=created.order_id, type="InventoryUpdated")

    event_consume(service="notification", data=shipped.envelope(), attempt=2)

    assert SentNotification.objects.filter(order_id=created.order_id).count() == 2
    assert len(mailoutbox) == 2


def test_a_policy_that_fails_gives_the_default(created, policy):
    def broken(service: str) -> hooks.Policy:
        raise RuntimeError("the levers' table is away")

    hooks.policy_use(broken)

    assert _twice("payment", created) == (Outcome.HANDLED, Outcome.DUPLICATE)


def test_outside_a_delivery_every_guard_holds(created, policy):
    policy("payment", NOTHING)
    first, decided = payment_charge(order_id=created.order_id, amount=1, token="tok_abc123")

    again, decided_again = payment_charge(order_id=created.order_id, amount=1, token="tok_abc123")

    assert decided and not decided_again
    assert again.pk == first.pk and first.guarded
