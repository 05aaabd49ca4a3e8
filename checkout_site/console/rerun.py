"""The counterfactual re-run: a finished order placed again, with one lever flipped for the new
order only, and the ledger's verdict on both.

The new order takes the original's body (customer, product, quantity, and its payment token
while the log still holds it whole) through the same parse and placement as POST /orders. Its
``Rerun`` row is stored in the new order's own transaction (``order_place``'s ``on_created``), so
by the time any worker sees one of its events, the row is there. ``rerun_install`` registers
``RerunLevers`` with the bus as its order-scoped levers: asked per order, it answers for a
re-run's order only, with the one lever flipped and every other lever as it is for every order.
A re-run's fault (a duplicate delivery, a worker crash) is the order's alone too
(``rerun_fault``, which the console's fault hooks consult).

What a re-run placed an order under is read once per order and process
(checkout_site/console/order_scope.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from checkout_site.console.levers import (
    DEFAULTS,
    SCHEMA,
    SUBSCRIPTION,
    LeverWish,
    lever_policy,
    lever_validate,
    policy_with,
)
from checkout_site.console.models import Fault, Rerun
from checkout_site.console.order_scope import rerun_for, rerun_none
from checkout_site.console.record import record_rerun
from orders.contract import ApiError, order_request_parse
from orders.models import TERMINAL_STATUSES, Order
from orders.placement import order_place
from services.bus import hooks
from services.bus.hooks import Policy
from services.bus.models import Event
from services.bus.registry import subscribers
from services.bus.schemas import DECLINED_TOKEN, mask_token, token_is_valid
from services.payment.models import Payment

# The faults that make a flip bite, for the new order only.
RERUN_FAULTS = (Fault.Kind.DUPLICATE, Fault.Kind.CRASH)
# The stand-in for a token the log no longer holds whole: test mode charges any well-formed
# token but tok_declined, so the stand-in keeps the original's outcome and its masked form.
_STAND_IN_PREFIX = "tok_rerun_"


class NotFinished(Exception):
    """The order is still on its way: there is no journey to compare yet."""


class OrderScopedLevers:
    """The bus's order-scoped levers (``hooks.order_levers_use``): a re-run's order only."""

    def policy(self, service: str, order_id: int) -> Policy | None:
        rerun = rerun_for(order_id)
        if rerun is None or rerun.lever not in DEFAULTS or rerun.service != service:
            return None
        return policy_with(
            lever_policy(service), lever=rerun.lever, value=rerun.value, note=rerun.note
        )

    def schema_version(self, type_name: str, order_id: int) -> int | None:
        rerun = rerun_for(order_id)
        if rerun is None or rerun.lever != SCHEMA or rerun.service != type_name:
            return None
        return int(rerun.value)

    def subscribers(self, event_type: str, order_id: int) -> tuple[str, ...]:
        rerun = rerun_for(order_id)
        if rerun is None or rerun.lever != SUBSCRIPTION or rerun.event_type != event_type:
            return ()
        return (rerun.service,)

    def unscoped(self, order_id: int) -> None:
        rerun_none(order_id)


@dataclass(frozen=True)
class RerunWish:
    lever: LeverWish
    fault: str
    fault_service: str


def rerun_validate(data: dict[str, Any]) -> RerunWish:
    """One lever flip (the shape of POST /control/levers) and, optionally, one fault; raises
    ``ApiError`` naming the field."""
    wish = lever_validate(data)
    if wish.lever == SUBSCRIPTION and (wish.value != "on" or wish.replay):
        raise _invalid(
            "value", "a re-run subscribes a service for its order only: value on, no replay"
        )
    fault = data.get("fault") or ""
    fault_service = data.get("faultService") or ""
    if fault:
        if fault not in RERUN_FAULTS:
            raise _invalid("fault", f"fault is one of {', '.join(RERUN_FAULTS)}, or none")
        if fault_service not in subscribers():
            raise _invalid("faultService", f"faultService is one of {', '.join(subscribers())}")
    elif fault_service:
        raise _invalid("fault", "faultService goes with a fault")
    return RerunWish(lever=wish, fault=fault, fault_service=fault_service)


def rerun_place(*, original: Order, wish: RerunWish, by: str = "") -> Order:
    """Place the original's body again as a new order, under the wished flip for it alone."""
    if original.status not in TERMINAL_STATUSES:
        raise NotFinished(original.pk)
    request = order_request_parse(
        {
            "userId": original.customer_id,
            "productId": original.product_id,
            "quantity": original.quantity,
            "paymentToken": _token_again(original),
        }
    )

    def record(order: Order) -> None:
        rerun = Rerun.objects.create(
            order_id=order.pk,
            original_id=original.pk,
            lever=wish.lever.lever,
            service=wish.lever.service,
            value=wish.lever.value,
            event_type=wish.lever.event_type,
            fault=wish.fault,
            fault_service=wish.fault_service,
            created_by=by,
        )
        record_rerun(rerun)

    with transaction.atomic():
        order, _ = order_place(request=request, on_created=record)
    return order


def _token_again(original: Order) -> str:
    """The original's payment token if its OrderCreated still holds it whole; once the log has
    masked it, a stand-in that test mode treats the same and that masks the same."""
    created = Event.objects.filter(order_id=original.pk, type="OrderCreated").first()
    token = created.payload.get("paymentToken") if created is not None else None
    if token_is_valid(token):
        return str(token)
    declined = Payment.objects.filter(order_id=original.pk, status=Payment.Status.DECLINED)
    if original.payment_token_masked == mask_token(DECLINED_TOKEN) and declined.exists():
        return DECLINED_TOKEN
    last4 = original.payment_token_masked.removeprefix("tok_****")
    return _STAND_IN_PREFIX + (last4 if token_is_valid("tok_" + last4) else "card")


def reruns_of(order_id: int) -> list[Rerun]:
    """The re-runs of an order, newest first."""
    return list(Rerun.objects.filter(original_id=order_id)[:20])


def reruns_recent(limit: int = 8) -> list[Rerun]:
    return list(Rerun.objects.all()[:limit])


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", message, field=field, errors={field: message})


def rerun_install() -> None:
    hooks.order_levers_use(OrderScopedLevers())
