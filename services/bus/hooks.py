"""Where the rest of the site hooks into the bus, without the bus knowing who they are.

Three moments, each a list of callables that the site registers from its apps' ``ready()``:

- ``on_committed``: events were stored and their transaction committed (the live pages push
  them to browsers). Runs after the events went to the broker; a hook that fails is logged and
  never undoes the commit.
- ``on_delivery``: a service is about to handle an event of an order, before its transaction
  (the operator's faults add latency or fail the attempt here). A hook may sleep, or raise
  ``DeliveryFailure`` to fail this attempt as an error in the handler would: retried, then
  dead-lettered.
- ``on_publish``: an event is being sent to a service's queue; a hook may ask for extra copies,
  each named by a label (the operator's duplicate-delivery fault). Consumers are idempotent, so
  a copy is dropped by the inbox.

Whatever acts on one delivery can say so with ``delivery_note``; the notes are stored in the
delivery's record, so the console shows which fault changed which attempt.

How the bus treats one service is a ``Policy``, asked of the provider the site registers with
``policy_use`` (the operator's levers); with none registered every service gets the default:
at least once, with its inbox and every guard of its effect. While a delivery runs,
``delivery_context()`` says which one it is and under which policy, so a service's core can
consult its guards without knowing who set them.

Which version of an event type a producer emits is asked of the provider registered with
``schema_versions_use`` (the schema lever), through ``schema_version_for``; with none, or one
that fails, a producer emits the type's oldest version still defined, the one every consumer of
an older deployment knows.

Which event types each service is subscribed to now is asked of the provider the site registers
with ``subscriptions_use`` (the operator's subscription lever); with none registered, or one that
fails, the registry's defaults hold (services/bus/registry.py).

One order can be delivered under levers of its own (the console's counterfactual re-run): the
provider registered with ``order_levers_use`` is asked first, by order, for a policy, a schema
version and extra subscribers, and has no say (None, nothing) for every other order. Whatever it
does not answer, the per-service providers above answer as for any order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from services.bus.schemas import versions

if TYPE_CHECKING:
    from services.bus.models import Event

log = logging.getLogger(__name__)

Committed = Callable[[Sequence["Event"]], None]
BeforeDelivery = Callable[[str, int], None]
Copies = Callable[[str, int], Iterable[str]]

_committed: list[Committed] = []
_before_delivery: list[BeforeDelivery] = []
_copies: list[Copies] = []
_notes: ContextVar[list[str] | None] = ContextVar("delivery_notes", default=None)


@dataclass(frozen=True)
class Policy:
    """How the bus delivers to one service. The default is the safe one.

    Idempotency has three layers, each of which a policy can drop:
    ``inbox`` (the bus records the event id with the effect and skips a repeat),
    ``effect_checked`` (the service's core looks for its earlier effect before acting) and
    ``effect_unique`` (the effect's row counts toward the service's unique constraints).
    ``ack="late"`` acknowledges a message after its handler committed (at least once);
    ``"early"`` when a worker takes it (at most once: a worker that dies loses it).
    ``note`` names a policy that is not the default, for the delivery's record.
    """

    inbox: bool = True
    effect_checked: bool = True
    effect_unique: bool = True
    ack: Literal["late", "early"] = "late"
    note: str = ""


DEFAULT_POLICY = Policy()

PolicyFor = Callable[[str], Policy]
_policy: list[PolicyFor] = []


@dataclass(frozen=True)
class DeliveryContext:
    """The delivery running now: which event, to which service, under which policy."""

    service: str
    event_id: str
    order_id: int
    attempt: int
    policy: Policy


_delivery: ContextVar[DeliveryContext | None] = ContextVar("delivery", default=None)

F = TypeVar("F")
R = TypeVar("R")


class DeliveryFailure(RuntimeError):
    """Raised by an ``on_delivery`` hook to fail this attempt of the delivery."""


def _register(hooks: list[F], hook: F) -> F:
    # An app's ready() may run again (a test's settings override): one registration each.
    if hook not in hooks:
        hooks.append(hook)
    return hook


def on_committed(hook: Committed) -> Committed:
    return _register(_committed, hook)


def on_delivery(hook: BeforeDelivery) -> BeforeDelivery:
    return _register(_before_delivery, hook)


def on_publish(hook: Copies) -> Copies:
    return _register(_copies, hook)


def policy_use(provider: PolicyFor) -> PolicyFor:
    """The site's say in how each service is delivered to; one provider, the last one set."""
    _policy[:] = [provider]
    return provider


class OrderLevers(Protocol):
    """The site's say in how one order's events travel, instead of every order's."""

    def policy(self, service: str, order_id: int) -> Policy | None: ...

    def schema_version(self, type_name: str, order_id: int) -> int | None: ...

    def subscribers(self, event_type: str, order_id: int) -> tuple[str, ...]: ...

    def unscoped(self, order_id: int) -> None: ...


_order_levers: list[OrderLevers] = []


def order_levers_use(provider: OrderLevers) -> OrderLevers:
    """The site's order-scoped levers; one provider, the last one set."""
    _order_levers[:] = [provider]
    return provider


def _order_say(ask: Callable[[OrderLevers], R], what: str) -> R | None:
    if not _order_levers:
        return None
    try:
        return ask(_order_levers[0])
    except Exception:
        log.warning("order levers failed; %s as for every order", what, exc_info=True)
        return None


def order_unscoped(order_id: int) -> None:
    """Tell the order-scoped provider that ``order_id`` was placed without levers of its own.

    An order's own levers are stored in the transaction that creates it (``order_place``'s
    ``on_created``), so an order committed without them never has any: the provider can answer
    for it without looking. Called once the order has committed.
    """
    _order_say(lambda levers: levers.unscoped(order_id), f"order {order_id}")


def policy_for(service: str, *, order_id: int | None = None) -> Policy:
    """The policy for ``service`` now (for ``order_id``, if it has levers of its own); the
    default if no provider or the provider fails."""
    if order_id is not None:
        own = _order_say(lambda levers: levers.policy(service, order_id), service)
        if own is not None:
            return own
    if not _policy:
        return DEFAULT_POLICY
    try:
        return _policy[0](service)
    except Exception:
        log.warning("policy provider failed; %s gets the default", service, exc_info=True)
        return DEFAULT_POLICY


SchemaVersionFor = Callable[[str], int]
_schema_version: list[SchemaVersionFor] = []


def schema_versions_use(provider: SchemaVersionFor) -> SchemaVersionFor:
    """The site's say in which version of each event type producers emit; the last one set."""
    _schema_version[:] = [provider]
    return provider


def schema_version_for(type_name: str, *, order_id: int | None = None) -> int:
    """The version of ``type_name`` to emit now (for ``order_id``, if it has levers of its
    own): the provider's, if it names one defined."""
    defined = versions(type_name)
    if order_id is not None:
        own = _order_say(lambda levers: levers.schema_version(type_name, order_id), type_name)
        if own in defined:
            return own
    if _schema_version:
        try:
            wanted = _schema_version[0](type_name)
        except Exception:
            log.warning("schema provider failed; %s is emitted as before", type_name, exc_info=True)
        else:
            if wanted in defined:
                return wanted
            log.warning("schema provider named %s v%s, not defined", type_name, wanted)
    return defined[0]


# {service: {event type: seq}}: the service handles the events of that type stored after that seq
# (0: every one in the log).
Subscriptions = Mapping[str, Mapping[str, int]]
SubscriptionsNow = Callable[[], Subscriptions]
_subscriptions: list[SubscriptionsNow] = []


def subscriptions_use(provider: SubscriptionsNow) -> SubscriptionsNow:
    """The site's say in who is subscribed to what now; one provider, the last one set.

    It is asked on every publish: it should answer from memory, and answer the same object for
    as long as nothing changed (the registry keeps its routing table per answer)."""
    _subscriptions[:] = [provider]
    return provider


def subscriptions_now() -> Subscriptions | None:
    """The provider's answer; None with no provider, or when it fails (the defaults hold)."""
    if not _subscriptions:
        return None
    try:
        return _subscriptions[0]()
    except Exception:
        log.warning("subscriptions provider failed; the defaults hold", exc_info=True)
        return None


def order_subscribers(event_type: str, order_id: int) -> tuple[str, ...]:
    """Services subscribed to ``event_type`` for this order only, besides those of every order."""
    return _order_say(lambda levers: levers.subscribers(event_type, order_id), event_type) or ()


@contextmanager
def delivering(context: DeliveryContext) -> Iterator[DeliveryContext]:
    token = _delivery.set(context)
    try:
        yield context
    finally:
        _delivery.reset(token)


def delivery_context() -> DeliveryContext | None:
    return _delivery.get()


def effect_policy() -> Policy:
    """The guards a service's core keeps for the effect it is about to make: those of the
    delivery running now, or every guard outside one (the request-response checkout, a test)."""
    context = _delivery.get()
    return context.policy if context is not None else DEFAULT_POLICY


def committed_run(events: Sequence[Event]) -> None:
    for hook in _committed:
        try:
            hook(events)
        except Exception:
            log.warning(
                "hook %s failed after commit", getattr(hook, "__name__", hook), exc_info=True
            )


def delivery_run(*, service: str, order_id: int) -> None:
    """Run the ``on_delivery`` hooks; raises whatever a hook raises (``DeliveryFailure``)."""
    for hook in _before_delivery:
        hook(service, order_id)


def copies_for(*, service: str, order_id: int) -> list[str]:
    """Labels of the extra copies the hooks ask for when an event goes to ``service``."""
    return [label for hook in _copies for label in hook(service, order_id)]


@contextmanager
def delivery_notes(*already: str) -> Iterator[list[str]]:
    """Collect what acts on the delivery inside the block (for its record)."""
    notes = [a for a in already if a]
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)


def delivery_note(label: str) -> None:
    notes = _notes.get()
    if notes is not None and label not in notes:
        notes.append(label)
