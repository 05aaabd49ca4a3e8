"""Delivering stored events in-process, in any order and any number of times.

For tests of the consumers' logic only (disorder, duplicates, the property test): each step
calls the real ``event_consume`` of one service with one stored event, as a worker would, so
what is exercised is the real inbox, handlers and outbox. The claim that the pipeline works
over the real broker is made by the stack tests, not here.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from services.bus.consumer import Outcome, event_consume
from services.bus.models import Event
from services.bus.registry import subscribers_of


class InProcessBus:
    def __init__(self, seed: int | None = None, order_ids: Iterable[int] | None = None) -> None:
        self.rng = random.Random(seed)
        self.order_ids = None if order_ids is None else set(order_ids)
        self.deliveries: Counter[tuple[str, int]] = Counter()
        self.outcomes: Counter[Outcome] = Counter()

    def due(self) -> list[tuple[str, Event]]:
        """Every (service, event) a subscriber has not been handed yet."""
        events = Event.objects.filter(mode=Event.Mode.EVENTS).order_by("seq")
        if self.order_ids is not None:
            events = events.filter(order_id__in=self.order_ids)
        return [
            (service, event)
            for event in events
            for service in subscribers_of(event.type)
            if (service, event.seq) not in self.deliveries
        ]

    def handed(self) -> list[tuple[str, Event]]:
        """Every (service, event) handed at least once: what a redelivery can repeat."""
        by_seq = {e.seq: e for e in Event.objects.filter(seq__in={s for _, s in self.deliveries})}
        return [(service, by_seq[seq]) for service, seq in sorted(self.deliveries)]

    def deliver(self, service: str, event: Event) -> Outcome:
        outcome = event_consume(service=service, data=event.envelope())
        self.deliveries[(service, event.seq)] += 1
        self.outcomes[outcome] += 1
        return outcome

    def drain(self, *, shuffle: bool = False, copies: int = 1) -> None:
        """Deliver until nothing is due; with ``shuffle`` any due event may go next, and each
        is handed ``copies`` times (the copies themselves arrive at random later points)."""
        echoes: list[tuple[str, Event]] = []
        while True:
            due = self.due()
            if not due and not echoes:
                return
            if shuffle:
                pool = due + echoes
                service, event = pool.pop(self.rng.randrange(len(pool)))
                if (service, event) in echoes:
                    echoes.remove((service, event))
            else:
                service, event = due[0] if due else echoes.pop(0)
            first = (service, event.seq) not in self.deliveries
            self.deliver(service, event)
            if first:
                echoes.extend([(service, event)] * (copies - 1))
