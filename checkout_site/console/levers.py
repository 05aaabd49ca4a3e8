"""The article's levers, pulled live: the bus's policy per service, set from the console.

Each pull is a row (``LeverChange``: which lever, which service, what value, who, when); a
lever's state is its newest row, and each pull is an entry of the operator's record too
(``record.py``), written in the same transaction. Like the faults, the state is read at most
once a second per process, so every worker sees a change within about a second and a delivery
pays a dict lookup.

``levers_install`` (from the console's app config) registers ``lever_policy`` as the bus's
policy provider: the bus asks it how to deliver to a service and never knows who answers.

Idempotency has three values, one per layer of protection dropped:

- ``on``: the inbox drops a repeat, the service's core looks for its earlier effect, and the
  database's unique constraint refuses a second row. The default.
- ``constraint-only``: no inbox, no look; only the unique constraint is left. A repeat fails on
  it, is retried, and is dead-lettered: the effect is not doubled, but the event is parked.
- ``off``: nothing guards the effect, and a repeat doubles it (a second charge, a second
  decrement, a second e-mail).

The schema lever says which version of an event type with more than one the producer emits
(a row with the type as its ``service`` and the version as its ``value``); the default is the
oldest, so nothing changes until an operator pulls it. ``levers_install`` registers
``lever_schema_version`` with the bus, which the producer asks without knowing who answers.

Subscriptions are levers too: which of the event types a service's code can handle it is
subscribed to now, per (service, event type), from the registry's defaults (loyalty: none).
``levers_install`` offers them to the bus (``hooks.subscriptions_use``), so the publisher, the
reconciler and the ledger see a change within a second. Subscribing with ``replay`` first sends
the service every stored event of the type (services/bus/replay.py); without it, the service
takes the events stored from then on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, get_args

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from checkout_site.console.models import Fault, LeverChange
from checkout_site.console.record import record_fault, record_lever
from orders.contract import ApiError, DeliveryValue, IdempotencyValue
from services.bus import hooks
from services.bus.hooks import Policy
from services.bus.registry import subscribers, subscriptions_default
from services.bus.replay import events_replay, log_end
from services.bus.schemas import event_types, versions

CACHE_SECONDS = 1.0

IDEMPOTENCY: tuple[str, ...] = get_args(IdempotencyValue)
DELIVERY: tuple[str, ...] = get_args(DeliveryValue)
VALUES = {"idempotency": IDEMPOTENCY, "delivery": DELIVERY}
DEFAULTS = {"idempotency": "on", "delivery": "at-least-once"}
SCHEMA = "schema"
SUBSCRIPTION = "subscription"
SUBSCRIPTION_VALUES = ("on", "off")

_POLICIES = {
    "on": Policy(),
    "constraint-only": Policy(inbox=False, effect_checked=False),
    "off": Policy(inbox=False, effect_checked=False, effect_unique=False),
}

_cache: tuple[float, dict[tuple[str, str], str]] = (float("-inf"), {})


def _stored() -> dict[tuple[str, str], str]:
    """{(lever, service or event type): value} of every lever's newest row, cached."""
    global _cache
    loaded_at, stored = _cache
    now = time.monotonic()
    if now - loaded_at < CACHE_SECONDS:
        return stored
    # Subscriptions are rows per (service, event type): subscriptions_state reads them.
    newest = (
        LeverChange.objects.filter(lever__in=[*DEFAULTS, SCHEMA])
        .values("lever", "service")
        .annotate(last=Max("id"))
    )
    stored = {
        (lever, service): value
        for lever, service, value in LeverChange.objects.filter(
            pk__in=newest.values("last")
        ).values_list("lever", "service", "value")
    }
    _cache = (now, stored)
    return stored


def levers_state() -> dict[str, dict[str, str]]:
    """{"idempotency": {service: value}, "delivery": {service: value}} for every service."""
    stored = _stored()
    return {
        lever: {name: stored.get((lever, name), default) for name in subscribers()}
        for lever, default in DEFAULTS.items()
    }


def schema_types() -> dict[str, list[int]]:
    """The event types a producer can be switched between versions of, and those versions."""
    return {name: versions(name) for name in event_types() if len(versions(name)) > 1}


def schema_versions() -> dict[str, int]:
    """{event type: the version its producer emits now}; the oldest when never switched."""
    stored = _stored()
    chosen = {}
    for name, defined in schema_types().items():
        value = stored.get((SCHEMA, name), "")
        chosen[name] = int(value) if value.isdigit() and int(value) in defined else defined[0]
    return chosen


def lever_schema_version(type_name: str) -> int:
    """The version the producer of ``type_name`` emits (the provider ``levers_install`` sets)."""
    return schema_versions().get(type_name, versions(type_name)[0])


_subscriptions_cache: tuple[float, dict[str, dict[str, int]]] = (float("-inf"), {})


def subscriptions_state() -> dict[str, dict[str, int]]:
    """{service: {event type: since seq}} subscribed now: the registry's defaults, changed by
    the newest subscription row of each (service, event type). The same dict for a second,
    so the registry keeps its routing table in between (the bus's subscriptions provider)."""
    global _subscriptions_cache
    loaded_at, state = _subscriptions_cache
    now = time.monotonic()
    if now - loaded_at < CACHE_SECONDS:
        return state
    state = {name: dict(types) for name, types in subscriptions_default().items()}
    newest = (
        LeverChange.objects.filter(lever=SUBSCRIPTION)
        .values("service", "event_type")
        .annotate(last=Max("id"))
    )
    for service, event_type, value, since in LeverChange.objects.filter(
        pk__in=newest.values("last")
    ).values_list("service", "event_type", "value", "since_seq"):
        types = state.setdefault(service, {})
        if value == "on":
            types[event_type] = since or 0
        else:
            types.pop(event_type, None)
    _subscriptions_cache = (now, state)
    return state


def levers_forget() -> None:
    """Drop this process's cached state, after it changed a lever itself."""
    global _cache, _subscriptions_cache
    _cache = (float("-inf"), {})
    _subscriptions_cache = (float("-inf"), {})


def lever_policy(service: str) -> Policy:
    """The bus's policy for ``service``, from its levers (the provider ``levers_install`` sets)."""
    state = levers_state()
    policy = Policy()
    for lever in DEFAULTS:
        policy = policy_with(policy, lever=lever, value=state[lever].get(service, DEFAULTS[lever]))
    notes = [
        f"{lever} {state[lever][service]} at {service}"
        for lever in DEFAULTS
        if state[lever].get(service, DEFAULTS[lever]) != DEFAULTS[lever]
    ]
    return replace(policy, note="; ".join(notes))


def policy_with(policy: Policy, *, lever: str, value: str, note: str = "") -> Policy:
    """``policy`` with one lever set to ``value``: idempotency's layers or delivery's
    acknowledgement, the other kept; ``note`` replaces what the policy's note says of it."""
    if lever == "idempotency":
        layers = _POLICIES[value]
        policy = replace(
            policy,
            inbox=layers.inbox,
            effect_checked=layers.effect_checked,
            effect_unique=layers.effect_unique,
        )
    elif lever == "delivery":
        policy = replace(policy, ack="early" if value == "at-most-once" else "late")
    if not note:
        return policy
    kept = [n for n in policy.note.split("; ") if n and not n.startswith(f"{lever} ")]
    return replace(policy, note="; ".join([*kept, note]))


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
    # Subscriptions only.
    event_type: str = ""
    replay: bool = False


def lever_validate(data: Any) -> LeverWish:
    """Check one change of the contract's shape; raises ``ApiError`` naming the field: 422 for
    an unknown lever, service or value, 409 for an unsafe one the deployment does not allow."""
    if not isinstance(data, dict):
        raise _invalid("body", "must be a JSON object with lever, service and value")
    lever = data.get("lever")
    if lever == SCHEMA:
        return _schema_validate(data)
    if not isinstance(lever, str) or (lever not in VALUES and lever != SUBSCRIPTION):
        known = ", ".join([*VALUES, SCHEMA, SUBSCRIPTION])
        raise _invalid("lever", f"lever must be one of {known}")
    service = data.get("service")
    if not isinstance(service, str) or service not in subscribers():
        raise _invalid("service", f"service must be one of {', '.join(subscribers())}")
    if lever == SUBSCRIPTION:
        return _subscription_validate(data, service)
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


def _schema_validate(data: dict[str, Any]) -> LeverWish:
    types = schema_types()
    event_type = data.get("eventType")
    if not isinstance(event_type, str) or event_type not in types:
        raise _invalid("eventType", f"eventType must be one of {', '.join(types)}")
    version = data.get("version")
    defined = types[event_type]
    if isinstance(version, bool) or not isinstance(version, int) or version not in defined:
        raise _invalid("version", f"{event_type} has versions {', '.join(str(v) for v in defined)}")
    return LeverWish(lever=SCHEMA, service=event_type, value=str(version))


def _subscription_validate(data: dict[str, Any], service: str) -> LeverWish:
    """A subscription is within what the service's code can handle; replay goes with "on"."""
    handles = sorted(subscribers()[service].handles)
    event_type = data.get("eventType")
    if not isinstance(event_type, str) or event_type not in handles:
        raise _invalid("eventType", f"{service} can handle {', '.join(handles)}")
    value = data.get("value")
    if not isinstance(value, str) or value not in SUBSCRIPTION_VALUES:
        raise _invalid("value", f"subscription is one of {', '.join(SUBSCRIPTION_VALUES)}")
    replay = data.get("replay", False)
    if replay is None:
        replay = False
    if not isinstance(replay, bool):
        raise _invalid("replay", "replay is true or false")
    if replay and value != "on":
        raise _invalid("replay", "replay goes with value on: an unsubscription replays nothing")
    return LeverWish(
        lever=SUBSCRIPTION, service=service, value=value, event_type=event_type, replay=replay
    )


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_field", message, field=field, errors={field: message})


def lever_set(wish: LeverWish, *, by: str = "") -> LeverChange:
    if wish.lever == SUBSCRIPTION:
        return _subscription_set(wish, by=by)
    change = _change_record(lever=wish.lever, service=wish.service, value=wish.value, by=by)
    levers_forget()
    return change


def _change_record(*, by: str, **fields: Any) -> LeverChange:
    """A lever's new state row and its entry in the operator's record, together."""
    with transaction.atomic():
        change = LeverChange.objects.create(changed_by=by, **fields)
        record_lever(change)
    return change


def _subscription_set(wish: LeverWish, *, by: str) -> LeverChange:
    """Record the subscription; with a replay, then send the log's events of the type so far.

    Events stored after ``end`` reach the service live: from this process at once, from the
    others once their cached subscriptions expire (a second); one a stale publisher left out
    is the reconciler's, which from now on counts it as the service's.
    """
    end = log_end()
    change = _change_record(
        lever=SUBSCRIPTION,
        service=wish.service,
        value=wish.value,
        event_type=wish.event_type,
        replay=wish.replay,
        since_seq=0 if wish.replay else end,
        by=by,
    )
    levers_forget()
    if wish.replay:
        events_replay(service=wish.service, event_type=wish.event_type, through_seq=end)
    return change


def levers_reset(*, by: str = "") -> list[str]:
    """Every lever back to its default and every fault off, each an entry of the operator's
    record; returns what was reset."""
    from checkout_site.console.faults import faults_forget

    reset: list[str] = []
    with transaction.atomic():
        for lever, values in levers_state().items():
            for service, value in values.items():
                if value != DEFAULTS[lever]:
                    _change_record(lever=lever, service=service, value=DEFAULTS[lever], by=by)
                    reset.append(f"{lever} {DEFAULTS[lever]} at {service}")
        for name, version in schema_versions().items():
            oldest = schema_types()[name][0]
            if version != oldest:
                change = _change_record(lever=SCHEMA, service=name, value=str(oldest), by=by)
                reset.append(change.label())
        reset.extend(_subscriptions_reset(by=by))
        for fault in Fault.objects.all():
            reset.append(fault.label())
            record_fault(fault, on=False, by=by)
        Fault.objects.all().delete()
    levers_forget()
    faults_forget()
    return reset


def _subscriptions_reset(*, by: str) -> list[str]:
    """Each service back to its default subscriptions; returns each change's label."""
    reset: list[str] = []
    defaults = subscriptions_default()
    for service, types in subscriptions_state().items():
        wanted = set(defaults.get(service, {}))
        changes = [(t, "off") for t in sorted(set(types) - wanted)]
        changes += [(t, "on") for t in sorted(wanted - set(types))]
        for event_type, value in changes:
            change = _change_record(
                lever=SUBSCRIPTION,
                service=service,
                value=value,
                event_type=event_type,
                since_seq=0 if value == "on" else None,
                by=by,
            )
            reset.append(change.label())
    return reset


def levers_document() -> dict[str, Any]:
    """GET /control/levers, as CONTRACT.md writes it."""
    state = levers_state()
    return {
        "idempotency": dict(state["idempotency"]),
        "delivery": dict(state["delivery"]),
        "schemas": schema_versions(),
        "subscriptions": {name: sorted(types) for name, types in subscriptions_state().items()},
    }


def levers_install() -> None:
    hooks.policy_use(lever_policy)
    hooks.schema_versions_use(lever_schema_version)
    hooks.subscriptions_use(subscriptions_state)
