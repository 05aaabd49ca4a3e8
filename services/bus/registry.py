"""Who listens to what: the one place that maps event types to the services that handle them.

A publisher never names its consumers. Each service declares ``HANDLES`` (event type -> handler)
in its ``handlers.py`` and its inbox table; this module lists the services. Each service has a
Celery queue of its own name, so it can be stopped, scaled and restarted on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module

from django.db import models

from services.bus.schemas import Envelope, Payload

Handler = Callable[[Envelope, Payload], None]

# service name -> the module holding its HANDLES and INBOX. The queue has the service's name.
_SERVICES = {
    "orders": "orders.handlers",
    "payment": "services.payment.handlers",
    "inventory": "services.inventory.handlers",
    "notification": "services.notification.handlers",
}


class NotSubscribed(LookupError):
    pass


@dataclass(frozen=True)
class Subscriber:
    name: str
    handles: dict[str, Handler]
    inbox: type[models.Model]

    @property
    def queue(self) -> str:
        return self.name


@cache
def subscribers() -> dict[str, Subscriber]:
    found = {}
    for name, module_path in _SERVICES.items():
        module = import_module(module_path)
        found[name] = Subscriber(name=name, handles=dict(module.HANDLES), inbox=module.INBOX)
    return found


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
