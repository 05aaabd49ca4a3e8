"""A stateful property test: any interleaving of place, pay, decline, reserve, reject, redeliver
and reorder keeps the books right, and ends where a simple model says it must.

Hypothesis drives the real consumers in-process (tests/bus_sim.py); each step hands one stored
event to one service. The model tracks only money and stock: which orders are charged, which
hold stock, what is on the shelf.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from checkout_site.console.consistency import consistency_check
from orders.contract import OrderRequest
from orders.models import Customer, Order, Product
from orders.placement import order_place
from services.bus.models import Event
from services.inventory.models import Reservation, Stock
from services.payment.models import Payment
from tests.bus_sim import InProcessBus

pytestmark = pytest.mark.django_db

PRODUCT = 456
SHELF = 5


class _Rollback(Exception):
    pass


class CheckoutMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Each example runs in a transaction of its own, rolled back at the end.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.bus = InProcessBus(seed=0)
        self.stock = SHELF
        self.payment: dict[int, str] = {}  # order -> CHARGED/DECLINED/REFUNDED/VOID
        self.inventory: dict[int, str] = {}  # order -> RESERVED/REJECTED/RELEASED/VOID
        self.quantity: dict[int, int] = {}
        self.declined: set[int] = set()

    @initialize()
    def catalog(self) -> None:
        Customer.objects.create(pk=123, name="Ada", email="ada@example.com")
        Product.objects.create(pk=PRODUCT, name="Mug", price=Decimal("5.00"), stock=SHELF)
        Stock.objects.create(product_id=PRODUCT, on_hand=SHELF, initial=SHELF)

    # --- the customer -------------------------------------------------------------------------
    @rule(quantity=st.integers(1, 4))
    def place(self, quantity: int) -> None:
        self._place("tok_abc123", quantity)

    @rule(quantity=st.integers(1, 4))
    def place_with_a_declined_card(self, quantity: int) -> None:
        self._place("tok_declined", quantity)

    def _place(self, token: str, quantity: int) -> None:
        request = OrderRequest(userId=123, productId=PRODUCT, quantity=quantity, paymentToken=token)
        order = order_place(request=request)[0]
        self.quantity[order.pk] = quantity
        if token == "tok_declined":
            self.declined.add(order.pk)

    # --- the bus: one named step each, then redelivery and reordering ---------------------------
    @precondition(lambda self: self._due("payment", "OrderCreated"))
    @rule(data=st.data())
    def pay_or_decline(self, data: st.DataObject) -> None:
        self._hand(data, "payment", "OrderCreated")

    @precondition(lambda self: self._due("inventory", "OrderCreated"))
    @rule(data=st.data())
    def reserve_or_reject(self, data: st.DataObject) -> None:
        self._hand(data, "inventory", "OrderCreated")

    @precondition(lambda self: self._due("inventory", "PaymentFailed"))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self._hand(data, "inventory", "PaymentFailed")

    @precondition(lambda self: self._due("payment", "InventoryRejected"))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        self._hand(data, "payment", "InventoryRejected")

    @precondition(lambda self: bool(self.bus.due()))
    @rule(data=st.data())
    def reorder(self, data: st.DataObject) -> None:
        """Any due delivery, not the oldest: what a broker with several workers does."""
        service, event = data.draw(st.sampled_from(self.bus.due()))
        self._deliver(service, event)

    @precondition(lambda self: bool(self.bus.deliveries))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        service, event = data.draw(st.sampled_from(self.bus.handed()))
        before = self._books()
        self._deliver(service, event)
        assert self._books() == before, "a second delivery changed something"

    def _due(self, service: str, type_: str) -> list[Event]:
        return [e for s, e in self.bus.due() if s == service and e.type == type_]

    def _hand(self, data: st.DataObject, service: str, type_: str) -> None:
        self._deliver(service, data.draw(st.sampled_from(self._due(service, type_))))

    def _deliver(self, service: str, event: Event) -> None:
        first = (service, event.seq) not in self.bus.deliveries
        self.bus.deliver(service, event)
        if first:
            self._model(service, event.type, event.order_id)

    def _model(self, service: str, type_: str, order: int) -> None:
        """The same decisions, by hand: this is the outcome that must be."""
        if (service, type_) == ("payment", "OrderCreated") and order not in self.payment:
            self.payment[order] = "DECLINED" if order in self.declined else "CHARGED"
        elif (service, type_) == ("payment", "InventoryRejected"):
            if self.payment.get(order) == "CHARGED":
                self.payment[order] = "REFUNDED"
            elif order not in self.payment:
                self.payment[order] = "VOID"
        elif (service, type_) == ("inventory", "OrderCreated") and order not in self.inventory:
            if self.quantity[order] <= self.stock:
                self.stock -= self.quantity[order]
                self.inventory[order] = "RESERVED"
            else:
                self.inventory[order] = "REJECTED"
        elif (service, type_) == ("inventory", "PaymentFailed"):
            if self.inventory.get(order) == "RESERVED":
                self.stock += self.quantity[order]
                self.inventory[order] = "RELEASED"
            elif order not in self.inventory:
                self.inventory[order] = "VOID"

    def _books(self) -> tuple[object, ...]:
        return (
            Stock.objects.get(product_id=PRODUCT).on_hand,
            sorted(Payment.objects.values_list("order_id", "status")),
            sorted(Reservation.objects.values_list("order_id", "state")),
            sorted(Order.objects.values_list("pk", "status")),
            Event.objects.count(),
        )

    # --- what must hold after every step ------------------------------------------------------
    @invariant()
    def money_and_stock_match_the_model(self) -> None:
        assert Stock.objects.get(product_id=PRODUCT).on_hand == self.stock >= 0
        assert dict(Payment.objects.values_list("order_id", "status")) == self.payment
        assert dict(Reservation.objects.values_list("order_id", "state")) == self.inventory

    @invariant()
    def nothing_is_wrong_even_midway(self) -> None:
        # With a deadline far away only what is already wrong is reported, not what is unfinished.
        assert consistency_check(deadline_s=3600).violations == []

    def teardown(self) -> None:
        try:
            while due := self.bus.due():
                self._deliver(*due[0])
            for order in self.quantity:
                shipped = self.payment[order] == "CHARGED" and self.inventory[order] == "RESERVED"
                assert Order.objects.get(pk=order).status == ("SHIPPED" if shipped else "CANCELLED")
                if not shipped:
                    assert self.payment[order] in {"DECLINED", "REFUNDED", "VOID"}
            held = sum(q for o, q in self.quantity.items() if self.inventory[o] == "RESERVED")
            assert Stock.objects.get(product_id=PRODUCT).on_hand == SHELF - held
            assert consistency_check(deadline_s=0).violations == []
        finally:
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)


def test_any_interleaving_of_the_checkout_keeps_the_books_and_ends_as_the_model_says():
    run_state_machine_as_test(
        CheckoutMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
