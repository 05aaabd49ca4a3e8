"""Who listens to what: the one place that maps event types to the services that handle them.

A publisher never names its consumers. Each service declares ``HANDLES`` (event type -> handler)
and ``INBOX`` in its ``handlers.py``, and its app config (a ``SubscriberConfig``) enters them
here when Django starts; the bus itself names no service. Each service has a Celery queue of its
own name, so it can be stopped, scaled and restarted on its own.

What a service's code can handle (``HANDLES``) is fixed; which of those types it is subscribed
to now is data: the provider the site registers (``hooks.subscriptions_use``) says, within what
the code can handle. Without one, each service is subscribed to what its app config's
``subscribed_by_default`` names (``None``: everything it handles). A subscription carries the
``seq`` after which the log's events of that type are the service's to handle: 0 for a service
that caught up on the whole log, the log's end at the time for one that joined live. The
publisher (``subscribers_of``), the reconciler and the ledger ask here, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module

from django.apps import AppConfig
from django.db import models
from django.db.models import Q

from services.bus import hooks
from services.bus.schemas import Envelope, Payload

Handler = Callable[[Envelope, Payload], None]

_subscribers: dict[str, Subscriber] = {}


class NotSubscribed(LookupError):
    pass


@dataclass(frozen=True)
class Subscriber:
    name: str
    handles: dict[str, Handler]
    inbox: type[models.Model]
    # How pages name its lane: in full, and where space is short.
    title: str = ""
    short: str = ""
    # The event types it is subscribed to when nobody changed it: None is all it handles.
    default: frozenset[str] | None = None

    @property
    def queue(self) -> str:
        return self.name

    @property
    def subscribed_by_default(self) -> frozenset[str]:
        return frozenset(self.handles) if self.default is None else self.default & set(self.handles)


class SubscriberConfig(AppConfig):
    """The app config of a subscribing service: ``handlers`` names its module of HANDLES and
    INBOX, and the service (and its queue) is named after the app's label."""

    handlers: str
    title = ""
    short = ""
    # What it is subscribed to until the operator changes it; None: every type it handles.
    subscribed_by_default: tuple[str, ...] | None = None

    def ready(self) -> None:
        module = import_module(self.handlers)
        title = self.title or self.label
        subscribe(
            Subscriber(
                name=self.label,
                handles=dict(module.HANDLES),
                inbox=module.INBOX,
                title=title,
                short=self.short or title,
                default=(
                    None
                    if self.subscribed_by_default is None
                    else frozenset(self.subscribed_by_default)
                ),
            )
        )


def subscribe(found: Subscriber) -> None:
    global _defaults
    _subscribers[found.name] = found
    _defaults = None
    _routing_forget()


def subscribers() -> dict[str, Subscriber]:
    """Every subscribing service, in the order of INSTALLED_APPS."""
    return _subscribers


def subscriber(name: str) -> Subscriber:
    try:
        return subscribers()[name]
    except KeyError:
        raise NotSubscribed(f"no service named {name!r}") from None


def subscriptions_default() -> dict[str, dict[str, int]]:
    """{service: {event type: 0}} as each app config declares it: the log from its start."""
    global _defaults
    if _defaults is None:
        _defaults = {
            name: dict.fromkeys(sorted(s.subscribed_by_default), 0)
            for name, s in subscribers().items()
        }
    return _defaults


_defaults: dict[str, dict[str, int]] | None = None


@dataclass(frozen=True)
class _Routing:
    """The provider's answer, kept to what each service's code can handle, and inverted."""

    answer: object
    subscribed: dict[str, dict[str, int]] = field(default_factory=dict)
    by_type: dict[str, tuple[str, ...]] = field(default_factory=dict)


_routing = _Routing(answer=None)


def _routing_forget() -> None:
    global _routing
    _routing = _Routing(answer=None)


def _routing_now() -> _Routing:
    global _routing
    answer: Mapping[str, Mapping[str, int]] | None = hooks.subscriptions_now()
    if answer is None:
        answer = subscriptions_default()
    routing = _routing
    if routing.answer is answer:
        return routing
    subscribed = {
        name: {t: int(since) for t, since in answer.get(name, {}).items() if t in s.handles}
        for name, s in subscribers().items()
    }
    by_type: dict[str, list[str]] = {}
    for name, types in subscribed.items():
        for event_type in types:
            by_type.setdefault(event_type, []).append(name)
    routing = _Routing(
        answer=answer,
        subscribed=subscribed,
        by_type={t: tuple(names) for t, names in by_type.items()},
    )
    _routing = routing
    return routing


def subscriptions() -> dict[str, dict[str, int]]:
    """{service: {event type: seq}} now, for every service (in INSTALLED_APPS order)."""
    return _routing_now().subscribed


def subscribers_of(event_type: str) -> tuple[str, ...]:
    """The services subscribed to ``event_type`` now: where the outbox sends it."""
    return _routing_now().by_type.get(event_type, ())


def subscribed_events(service: str) -> Q:
    """A filter of the event log: the events ``service`` is subscribed to handle now."""
    wanted = Q(pk__in=[])
    for event_type, since in subscriptions().get(service, {}).items():
        wanted |= Q(type=event_type, seq__gt=since)
    return wanted


def handler_for(service: str, event_type: str) -> Handler:
    """What the service's code runs for ``event_type``, subscribed now or not: a delivery
    queued before an unsubscription is in flight, and finishes."""
    try:
        return subscriber(service).handles[event_type]
    except KeyError:
        raise NotSubscribed(f"{service} does not subscribe to {event_type}") from None


def queues() -> list[str]:
    return [s.queue for s in subscribers().values()]
