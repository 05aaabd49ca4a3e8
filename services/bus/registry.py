"""Who listens to what: the one place that maps event types to the services that handle them.

A publisher never names its consumers. Each service declares ``HANDLES`` (event type -> handler)
and ``INBOX`` in its ``handlers.py``, and its app config (a ``SubscriberConfig``) enters them
here when Django starts; the bus itself names no service. Each service has a Celery queue of its
own name, so it can be stopped, scaled and restarted on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from django.apps import AppConfig
from django.db import models

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

    @property
    def queue(self) -> str:
        return self.name


class SubscriberConfig(AppConfig):
    """The app config of a subscribing service: ``handlers`` names its module of HANDLES and
    INBOX, and the service (and its queue) is named after the app's label."""

    handlers: str
    title = ""
    short = ""

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
            )
        )


def subscribe(found: Subscriber) -> None:
    _subscribers[found.name] = found
    subscribers_of.cache_clear()


def subscribers() -> dict[str, Subscriber]:
    """Every subscribing service, in the order of INSTALLED_APPS."""
    return _subscribers


def subscriber(name: str) -> Subscriber:
    try:
        return subscribers()[name]
    except KeyError:
        raise NotSubscribed(f"no service named {name!r}") from None


@cache
def subscribers_of(event_type: str) -> tuple[str, ...]:
    return tuple(s.name for s in subscribers().values() if event_type in s.handles)


def handler_for(service: str, event_type: str) -> Handler:
    try:
        return subscriber(service).handles[event_type]
    except KeyError:
        raise NotSubscribed(f"{service} does not subscribe to {event_type}") from None


def queues() -> list[str]:
    return [s.queue for s in subscribers().values()]
