"""The counterfactual re-run (/orders/<id>/rerun): a finished order placed again with one lever
flipped for the new order alone.

In-process: the form places a new order with the same body through the real placement, records
the flip for it, and refuses bad input with nothing placed. On the real stack (a real worker on
real Redis queues): the flip acts on the re-run's order and not on an order placed beside it, and
idempotency off with a duplicate at payment charges the re-run twice while the original stays
healthy, as the ledger says of each.
"""

from __future__ import annotations

import pytest
from django.test import Client

from checkout_site.console.consistency import ledger
from checkout_site.console.models import Crash, RecordEntry, Rerun
from checkout_site.console.record import record_touching
from checkout_site.console.views import OPERATOR_PERMISSIONS
from orders.contract import OrderRequest
from orders.models import Order, OrderStatus
from orders.placement import order_place
from services.bus import hooks
from services.bus.models import Delivery, Event
from services.payment.models import Payment
from tests.bus_sim import InProcessBus
from tests.conftest import wait_for
from tests.helpers import permissions_grant, post_order, user_make, wait_drained, wait_terminal

pytest_plugins = ["tests.console_fixtures"]


@pytest.fixture(autouse=True)
def _unsafe_levers_allowed(settings):
    """As on a demo machine: the levers that give up a guarantee may be pulled."""
    settings.CHECKOUT_UNSAFE_LEVERS = True


def _place(token: str = "tok_abc123", quantity: int = 1) -> Order:
    request = OrderRequest(userId=123, productId=456, quantity=quantity, paymentToken=token)
    order, _ = order_place(request=request)
    return order


def _rerun(client: Client, order_id: int, flip: str, fault: str = "") -> object:
    return client.post(
        f"/orders/{order_id}/rerun", {"flip": flip, "fault": fault}, HTTP_X_CSRFTOKEN=_csrf(client)
    )


def _csrf(client: Client) -> str:
    return client.cookies["csrftoken"].value


def _operator() -> Client:
    operator = Client()
    operator.force_login(permissions_grant(user_make("operator", staff=True), OPERATOR_PERMISSIONS))
    return operator


def _new_orders(after: int) -> list[Order]:
    return list(Order.objects.filter(pk__gt=after).order_by("pk"))


@pytest.mark.django_db
class TestInProcess:
    @pytest.fixture
    def shipped(self, customer, product) -> Order:
        order = _place(quantity=2)
        InProcessBus().drain()
        order.refresh_from_db()
        assert order.status == OrderStatus.SHIPPED
        return order

    def test_it_places_a_new_order_with_the_same_body(self, staff_client, shipped):
        answer = _rerun(staff_client, shipped.pk, "idempotency/payment/off", "duplicate/payment")

        [new] = _new_orders(shipped.pk)
        assert answer.status_code == 302
        assert answer["Location"] == f"/orders/{shipped.pk}/rerun?new={new.pk}"
        same = ("customer_id", "product_id", "quantity", "amount", "payment_token_masked")
        assert [getattr(new, f) for f in same] == [getattr(shipped, f) for f in same]
        created = Event.objects.get(order_id=new.pk, type="OrderCreated")
        assert created.payload["paymentToken"] == "tok_abc123"
        rerun = Rerun.objects.get(order_id=new.pk)
        assert (rerun.original_id, rerun.lever, rerun.service, rerun.value) == (
            shipped.pk,
            "idempotency",
            "payment",
            "off",
        )
        assert (rerun.fault, rerun.fault_service, rerun.created_by) == (
            "duplicate",
            "payment",
            "operator",
        )

    def test_the_flip_is_the_new_orders_alone(self, staff_client, shipped):
        _rerun(staff_client, shipped.pk, "delivery/inventory/at-most-once")
        [new] = _new_orders(shipped.pk)
        beside = _place()

        flipped = hooks.policy_for("inventory", order_id=new.pk)
        assert flipped.ack == "early" and flipped.inbox
        assert "order " + str(new.pk) + " only" in flipped.note
        assert hooks.policy_for("inventory", order_id=beside.pk) == hooks.DEFAULT_POLICY
        assert hooks.policy_for("inventory", order_id=shipped.pk) == hooks.DEFAULT_POLICY
        assert hooks.policy_for("payment", order_id=new.pk) == hooks.DEFAULT_POLICY
        assert hooks.policy_for("inventory") == hooks.DEFAULT_POLICY
        # The operator's record has it, as a marker of the new order's swimlane only.
        [entry] = RecordEntry.objects.filter(order_id=new.pk)
        assert entry.label.startswith(f"delivery at-most-once at inventory for order {new.pk}")
        assert [e.pk for e in record_touching(new.pk)] == [entry.pk]
        assert entry.pk not in [e.pk for e in record_touching(beside.pk)]

    def test_with_a_lever_off_for_every_order_the_form_offers_it_on_for_the_rerun(
        self, staff_client, shipped
    ):
        pulled = staff_client.post(
            "/control/levers",
            {"lever": "idempotency", "service": "payment", "value": "off"},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=_csrf(staff_client),
        )
        assert pulled.status_code == 200

        page = staff_client.get(f"/orders/{shipped.pk}/rerun").content.decode()
        assert 'value="idempotency/payment/on" selected' in page
        assert 'value="idempotency/payment/off"' not in page, "it is off for every order now"
        _rerun(staff_client, shipped.pk, "idempotency/payment/on", "duplicate/payment")
        [new] = _new_orders(shipped.pk)

        kept = hooks.policy_for("payment", order_id=new.pk)
        assert kept.inbox and kept.effect_checked and kept.effect_unique, "the re-run's is on"
        assert not hooks.policy_for("payment").inbox, "every other order still runs without"

    def test_a_schema_flip_changes_the_version_of_the_new_orders_event_only(
        self, staff_client, shipped
    ):
        _rerun(staff_client, shipped.pk, "schema/OrderCreated/2")
        [new] = _new_orders(shipped.pk)
        beside = _place()

        versions = dict(
            Event.objects.filter(type="OrderCreated").values_list("order_id", "version")
        )
        assert versions == {shipped.pk: 1, new.pk: 2, beside.pk: 1}

    def test_a_subscription_flip_sends_the_new_orders_events_to_the_service(
        self, staff_client, shipped
    ):
        _rerun(staff_client, shipped.pk, "subscription/loyalty/OrderShipped")
        [new] = _new_orders(shipped.pk)

        assert hooks.order_subscribers("OrderShipped", new.pk) == ("loyalty",)
        assert hooks.order_subscribers("OrderShipped", shipped.pk) == ()
        assert hooks.order_subscribers("OrderCreated", new.pk) == ()

    def test_a_rerun_of_a_rerun_is_a_rerun_of_the_same_body(self, staff_client, shipped):
        _rerun(staff_client, shipped.pk, "idempotency/payment/off")
        [first] = _new_orders(shipped.pk)
        InProcessBus().drain()

        answer = _rerun(staff_client, first.pk, "schema/OrderCreated/2")

        [second] = _new_orders(first.pk)
        assert answer.status_code == 302
        assert Rerun.objects.get(order_id=second.pk).original_id == first.pk
        assert second.quantity == shipped.quantity == 2
        page = staff_client.get(f"/orders/{first.pk}/rerun?new={second.pk}")
        assert f'href="/orders/{shipped.pk}/rerun"' in page.content.decode()

    def test_a_token_the_log_has_masked_is_stood_in_for_with_the_same_outcome(
        self, staff_client, customer, product
    ):
        declined, charged = _place("tok_declined"), _place("tok_visa4242")
        InProcessBus().drain()
        for order in (declined, charged):
            order.refresh_from_db()
            created = Event.objects.get(order_id=order.pk, type="OrderCreated")
            created.payload = {"paymentToken": order.payment_token_masked}
            created.save(update_fields=["payload"])

        _rerun(staff_client, declined.pk, "idempotency/payment/off")
        _rerun(staff_client, charged.pk, "idempotency/payment/off")

        again = {
            r.original_id: Event.objects.get(order_id=r.order_id, type="OrderCreated")
            for r in Rerun.objects.all()
        }
        assert again[declined.pk].payload["paymentToken"] == "tok_declined"
        assert again[charged.pk].payload["paymentToken"] == "tok_rerun_4242"
        assert Order.objects.get(pk=again[charged.pk].order_id).payment_token_masked == (
            "tok_****4242"
        )

    def test_the_page_shows_the_form_and_both_sides(self, staff_client, shipped):
        _rerun(staff_client, shipped.pk, "idempotency/payment/off", "duplicate/payment")
        [new] = _new_orders(shipped.pk)

        page = staff_client.get(f"/orders/{shipped.pk}/rerun?new={new.pk}").content.decode()

        assert 'name="flip"' in page and 'value="idempotency/payment/off"' in page
        assert f'data-order="{shipped.pk}"' in page and f'data-order="{new.pk}"' in page
        assert "tok_abc123" not in page, "the token is never shown whole"

    @pytest.mark.parametrize(
        ("flip", "fault", "field"),
        [
            ("bogus/payment/off", "", "lever"),
            ("idempotency/nobody/off", "", "service"),
            ("idempotency/payment/maybe", "", "value"),
            ("schema/OrderCreated/7", "", "version"),
            ("subscription/loyalty/OrderCreated", "", "eventType"),
            ("idempotency/payment/off", "meltdown/payment", "fault"),
            ("idempotency/payment/off", "crash/nobody", "faultService"),
            ("", "", "lever"),
        ],
    )
    def test_bad_input_is_refused_naming_the_field_and_nothing_is_placed(
        self, staff_client, shipped, flip, fault, field
    ):
        answer = _rerun(staff_client, shipped.pk, flip, fault)

        assert answer.status_code == 422
        assert field in answer.content.decode()
        assert _new_orders(shipped.pk) == [] and not Rerun.objects.exists()

    def test_an_unsafe_flip_is_refused_where_the_deployment_refuses_unsafe_levers(
        self, staff_client, shipped, settings
    ):
        settings.CHECKOUT_UNSAFE_LEVERS = False

        answer = _rerun(staff_client, shipped.pk, "idempotency/payment/off")

        assert answer.status_code == 409
        assert "CHECKOUT_UNSAFE_LEVERS" in answer.content.decode()
        assert _new_orders(shipped.pk) == []

    def test_an_unfinished_order_gets_a_clear_message_and_nothing_is_placed(
        self, staff_client, customer, product
    ):
        waiting = _place()

        page = staff_client.get(f"/orders/{waiting.pk}/rerun")
        answer = _rerun(staff_client, waiting.pk, "idempotency/payment/off")

        assert "is still INITIATED" in page.content.decode()
        assert answer.status_code == 409
        assert "a re-run starts from a finished order" in answer.content.decode()
        assert _new_orders(waiting.pk) == []

    def test_an_unknown_order_is_404(self, staff_client, shipped):
        for order_id in (shipped.pk + 100, 2**63):
            assert staff_client.get(f"/orders/{order_id}/rerun").status_code == 404
            assert _rerun(staff_client, order_id, "idempotency/payment/off").status_code == 404
        assert _new_orders(shipped.pk) == []

    def test_strangers_and_staff_without_the_lever_permission_place_nothing(self, client, shipped):
        stranger = client.post(f"/orders/{shipped.pk}/rerun", {"flip": "idempotency/payment/off"})
        viewer = Client()
        viewer.force_login(user_make("viewer", staff=True))
        looked = viewer.get(f"/orders/{shipped.pk}/rerun")
        refused = viewer.post(f"/orders/{shipped.pk}/rerun", {"flip": "idempotency/payment/off"})

        assert stranger.status_code == 302 and "/admin/login/" in stranger["Location"]
        assert client.get(f"/orders/{shipped.pk}/rerun").status_code == 302
        assert looked.status_code == 200
        assert refused.status_code == 403
        assert _new_orders(shipped.pk) == []

    def test_an_order_placed_without_levers_of_its_own_costs_no_query_to_ask_about(
        self,
        staff_client,
        shipped,
        django_capture_on_commit_callbacks,
        django_assert_num_queries,
    ):
        _rerun(staff_client, shipped.pk, "delivery/inventory/at-most-once")
        [flipped] = _new_orders(shipped.pk)
        with django_capture_on_commit_callbacks() as callbacks:
            plain = _place()
        # The first thing its commit runs, before the flush that asks about its event.
        callbacks[0]()

        with django_assert_num_queries(0):
            assert hooks.policy_for("inventory", order_id=plain.pk) == hooks.DEFAULT_POLICY
            assert hooks.order_subscribers("OrderCreated", plain.pk) == ()
        assert hooks.policy_for("inventory", order_id=flipped.pk).ack == "early"
        untold = _place()  # its commit's hint never ran: the bus looks, once
        with django_assert_num_queries(1):
            hooks.policy_for("inventory", order_id=untold.pk)
            hooks.policy_for("payment", order_id=untold.pk)

    def test_the_order_page_shows_the_ledger_panel_to_staff_only(
        self, staff_client, client, shipped
    ):
        staff_page = staff_client.get(f"/orders/{shipped.pk}").content.decode()
        public_page = client.get(f"/orders/{shipped.pk}").content.decode()

        assert 'id="order-ledger"' in staff_page and f"/orders/{shipped.pk}/rerun" in staff_page
        assert 'id="order-ledger"' not in public_page and "/rerun" not in public_page


@pytest.mark.stack
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("services_restored")
class TestOnTheStack:
    def test_idempotency_off_and_a_duplicate_charge_the_rerun_twice_and_not_its_original(
        self, stack, client, customer, product
    ):
        original = wait_terminal(post_order(client).json()["orderId"])
        wait_drained()
        operator = _operator()

        answer = operator.post(
            f"/orders/{original.pk}/rerun",
            {"flip": "idempotency/payment/off", "fault": "duplicate/payment"},
        )
        beside = post_order(client).json()["orderId"]

        [rerun] = Rerun.objects.all()
        assert answer.status_code == 302
        wait_for(lambda: Payment.objects.filter(order_id=rerun.order_id).count() == 2)
        wait_terminal(rerun.order_id)
        wait_terminal(beside)
        wait_drained()
        assert Payment.objects.filter(order_id=rerun.order_id, status="CHARGED").count() == 2
        assert Payment.objects.filter(order_id=original.pk).count() == 1
        assert Payment.objects.filter(order_id=beside).count() == 1
        doubled = ledger(order=Order.objects.get(pk=rerun.order_id))
        assert not doubled["healthy"]
        assert doubled["order"]["charges"]["charged"] == 2
        assert {v["invariant"] for v in doubled["violations"]} >= {"one_charge_per_order"}
        assert all(v["orderId"] == rerun.order_id for v in doubled["violations"])
        kept = ledger(order=original)
        assert kept["healthy"] and kept["order"]["charges"]["charged"] == 1
        assert ledger(order=Order.objects.get(pk=beside))["healthy"]
        copy = Delivery.objects.get(
            order_id=rerun.order_id, service="payment", event_type="OrderCreated"
        )
        assert "order " + str(rerun.order_id) + " only" in copy.faults

    def test_at_most_once_with_a_crash_loses_the_reruns_event_and_not_the_one_beside(
        self, stack, client, customer, product
    ):
        original = wait_terminal(post_order(client).json()["orderId"])
        wait_drained()
        operator = _operator()

        operator.post(
            f"/orders/{original.pk}/rerun",
            {"flip": "delivery/inventory/at-most-once", "fault": "crash/inventory"},
        )
        [rerun] = Rerun.objects.all()
        # Placed once the crash has happened: messages already written to the dying pool
        # process's pipe come back only after the visibility timeout (late, not lost), and an
        # order that met that would only be slow. The flip and the fault are still the re-run's.
        wait_for(lambda: Crash.objects.filter(order_id=rerun.order_id).exists())
        beside = post_order(client).json()["orderId"]

        assert wait_terminal(beside).status == OrderStatus.SHIPPED
        wait_for(
            lambda: Delivery.objects.filter(order_id=rerun.order_id, service="payment").exists()
        )
        wait_drained()
        stuck = Order.objects.get(pk=rerun.order_id)
        assert stuck.status == OrderStatus.INITIATED
        assert not Delivery.objects.filter(order_id=rerun.order_id, service="inventory").exists()
