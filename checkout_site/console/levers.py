"""The article's levers, pulled live: the bus's policy per service, set from the console.

Each pull is a row (``LeverChange``: which lever, which service, what value, who, when); a
lever's state is its newest row. Like the faults, the state is read at most once a second per
process, so every worker sees a change within about a second and a delivery pays a dict lookup.

``levers_install`` (from the console's app config) registers ``lever_policy`` as the bus's
policy provider: the bus asks it how to deliver to a service and never knows who answers.

Idempotency has three values, one per layer of protection dropped:

- ``on``: the inbox drops a repeat, the service's core looks for its earlier effect, and the
  database's unique constraint refuses a second row. The default.
- ``constraint-only``: no inbox, no look; only the unique constraint is left. A repeat fails on
  it, is retried, and is dead-lettered: the effect is not doubled, but the event is parked.
- ``off``: nothing guards the effect, and a repeat doubles it (a second charge, a second
  decrement, a second e-mail).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, get_args

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from checkout_site.console.models import Fault, LeverChange
from orders.contract import ApiError, DeliveryValue, IdempotencyValue
from services.bus import hooks
from services.bus.hooks import Policy
from services.bus.registry import subscribers
from services.bus.schemas import event_types

CACHE_SECONDS = 1.0

IDEMPOTENCY: tuple[str, ...] = get_args(IdempotencyValue)
DELIVERY: tuple[str, ...] = get_args(DeliveryValue)
VALUES = {"idempotency": IDEMPOTENCY, "delivery": DELIVERY}
DEFAULTS = {"idempotency": "on", "delivery": "at-least-once"}
# Levers of the contract not yet switchable here: read-only in the document.
READ_ONLY = ("schema", "subscription")

_POLICIES = {
    "on": Policy(),
    "constraint-only": Policy(inbox=False, effect_checked=False),
    "off": Policy(inbox=False, effect_checked=False, effect_unique=False),
}

_cache: tuple[float, dict[str, dict[str, str]]] = (float("-inf"), {})


def levers_state() -> dict[str, dict[str, str]]:
    """{"idempotency": {service: value}, "delivery": {service: value}} for every service."""
    global _cache
    loaded_at, state = _cache
    now = time.monotonic()
    if now - loaded_at < CACHE_SECONDS:
        return state
    newest = LeverChange.objects.values("lever", "service").annotate(last=Max("id"))
    stored = {
        (lever, service): value
        for lever, service, value in LeverChange.objects.filter(
            pk__in=newest.values("last")
        ).values_list("lever", "service", "value")
    }
    state = {
        lever: {name: stored.get((lever, name), default) for name in subscribers()}
        for lever, default in DEFAULTS.items()
    }
    _cache = (now, state)
    return state


def levers_forget() -> None:
    """Drop this process's cached state, after it changed a lever itself."""
    global _cache
    _cache = (float("-inf"), {})


def lever_policy(service: str) -> Policy:
    """The bus's policy for ``service``, from its levers (the provider ``levers_install`` sets)."""
    state = levers_state()
    idempotency = state["idempotency"].get(service, "on")
    delivery = state["delivery"].get(service, "at-least-once")
    policy = _POLICIES[idempotency]
    ack = "early" if delivery == "at-most-once" else "late"
    notes = [
        f"{lever} {state[lever][service]} at {service}"
        for lever in DEFAULTS
        if state[lever].get(service, DEFAULTS[lever]) != DEFAULTS[lever]
    ]
    return Policy(
        inbox=policy.inbox,
        effect_checked=policy.effect_checked,
        effect_unique=policy.effect_unique,
        ack=ack,
        note="; ".join(notes),
    )


def lever_is_unsafe(lever: str, value: str) -> bool:
    """Whether the value gives up a guarantee (exactly-once effects, or at-least-once)."""
    return value != DEFAULTS.get(lever, value)


def levers_unsafe() -> list[str]:
    """What is given up now, as the banner says it: "idempotency off at payment"."""
    state = levers_state()
    return [
        f"{lever} {value} at {service}"
        for lever, values in state.items()
        for service, value in values.items()
        if lever_is_unsafe(lever, value)
    ]


@dataclass(frozen=True)
class LeverWish:
    lever: str
    service: str
    value: str


def lever_validate(data: Any) -> LeverWish:
    """Check one change of the contract's shape; raises ``ApiError`` naming the field: 422 for
    an unknown lever, service or value, 409 for an unsafe one the deployment does not allow."""
    if not isinstance(data, dict):
        raise _invalid("body", "must be a JSON object with lever, service and value")
    lever = data.get("lever")
    if lever in READ_ONLY:
        raise _invalid("lever", f"the {lever} lever is not switchable yet")
    if not isinstance(lever, str) or lever not in VALUES:
        raise _invalid("lever", f"lever must be one of {', '.join([*VALUES, *READ_ONLY])}")
    service = data.get("service")
    if not isinstance(service, str) or service not in subscribers():
        raise _invalid("service", f"service must be one of {', '.join(subscribers())}")
    value = data.get("value")
    if not isinstance(value, str) or value not in VALUES[lever]:
        raise _invalid("value", f"{lever} is one of {', '.join(VALUES[lever])}")
    if lever_is_unsafe(lever, value) and not (settings.DEBUG or settings.CHECKOUT_UNSAFE_LEVERS):
        raise ApiError(
            409,
            "unsafe_lever",
            f"{lever} {value} gives up a guarantee: refused while DJANGO_DEBUG is false, "
            "unless CHECKOUT_UNSAFE_LEVERS=true",
            field="value",
        )
    return LeverWish(lever=lever, service=service, value=value)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", message, field=field, errors={field: message})


def lever_set(wish: LeverWish, *, by: str = "") -> LeverChange:
    change = LeverChange.objects.create(
        lever=wish.lever, service=wish.service, value=wish.value, changed_by=by
    )
    levers_forget()
    return change


def levers_reset(*, by: str = "") -> list[str]:
    """Every lever back to its default (each a recorded change) and every fault off; returns
    what was reset, as the operator's record names it."""
    from checkout_site.console.faults import faults_forget

    reset: list[str] = []
    with transaction.atomic():
        for lever, values in levers_state().items():
            for service, value in values.items():
                if value != DEFAULTS[lever]:
                    LeverChange.objects.create(
                        lever=lever, service=service, value=DEFAULTS[lever], changed_by=by
                    )
                    reset.append(f"{lever} {DEFAULTS[lever]} at {service}")
        reset.extend(f.label() for f in Fault.objects.all())
        Fault.objects.all().delete()
    levers_forget()
    faults_forget()
    return reset


def levers_document() -> dict[str, Any]:
    """GET /control/levers, as CONTRACT.md writes it."""
    state = levers_state()
    types = event_types()
    return {
        "idempotency": dict(state["idempotency"]),
        "delivery": dict(state["delivery"]),
        # The producer emits the one version each type has; switching it is a later lever.
        "schemas": {"OrderCreated": types["OrderCreated"].version},
        "subscriptions": {name: sorted(s.handles) for name, s in subscribers().items()},
    }


def lever_changes(limit: int = 20) -> list[LeverChange]:
    return list(LeverChange.objects.all()[:limit])


def levers_install() -> None:
    hooks.policy_use(lever_policy)
