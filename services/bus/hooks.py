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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

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

F = TypeVar("F")


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
