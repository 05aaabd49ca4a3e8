"""The bus's subscriptions: declared defaults, the provider the site hands it, and how the
publisher, the reconciler and the ledger read them (services/bus/registry.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from services.bus import hooks
from services.bus.models import Event
from services.bus.registry import (
    subscribed_events,
    subscribers,
    subscribers_of,
    subscriptions,
    subscriptions_default,
)


@pytest.fixture
def provider() -> Iterator[Callable[[Callable[[], hooks.Subscriptions]], None]]:
    """Hand the bus a subscriptions provider for one test, as the console's levers do."""
    before = list(hooks._subscriptions)
    yield hooks.subscriptions_use
    hooks._subscriptions[:] = before


def test_by_default_every_service_is_subscribed_to_all_it_handles_but_loyalty_to_nothing():
    defaults = subscriptions_default()

    for name, subscriber in subscribers().items():
        expected = set() if name == "loyalty" else set(subscriber.handles)
        assert set(defaults[name]) == expected
    assert set(subscribers()["loyalty"].handles) == {"OrderShipped"}
    assert all(since == 0 for types in defaults.values() for since in types.values())


def test_with_no_provider_the_publisher_sends_to_the_defaults(provider):
    hooks._subscriptions.clear()

    # The article's notification service hears of payment and stock, not of a new order.
    assert subscribers_of("OrderCreated") == ("payment", "inventory")
    assert subscribers_of("PaymentProcessed") == ("orders", "notification")
    assert subscribers_of("OrderShipped") == ("orders",)
    assert subscribers_of("PointsAwarded") == ("orders",)


def test_a_provider_adds_a_subscription_within_what_the_code_can_handle(provider):
    answer = {**subscriptions_default(), "loyalty": {"OrderShipped": 7, "OrderCreated": 0}}
    provider(lambda: answer)

    assert subscribers_of("OrderShipped") == ("orders", "loyalty")
    assert "loyalty" not in subscribers_of("OrderCreated")
    assert subscriptions()["loyalty"] == {"OrderShipped": 7}


def test_a_provider_can_unsubscribe_a_core_service(provider):
    answer = {**subscriptions_default(), "notification": {"OrderCancelled": 0}}
    provider(lambda: answer)

    assert subscribers_of("PaymentProcessed") == ("orders",)
    assert subscribers_of("OrderCancelled") == ("notification",)


def test_the_routing_follows_a_new_answer_and_keeps_an_unchanged_one(provider):
    answers = [subscriptions_default()]
    provider(lambda: answers[-1])
    assert "loyalty" not in subscribers_of("OrderShipped")

    answers.append({**subscriptions_default(), "loyalty": {"OrderShipped": 0}})

    assert "loyalty" in subscribers_of("OrderShipped")


def test_a_failing_provider_leaves_the_defaults(provider):
    def broken() -> hooks.Subscriptions:
        raise RuntimeError("the console's table is gone")

    provider(broken)

    assert subscriptions() == subscriptions_default()


@pytest.mark.django_db
def test_the_events_a_service_is_subscribed_to_start_after_its_seq(provider):
    def stored(type_: str) -> Event:
        return Event.objects.create(
            type=type_,
            version=1,
            order_id=1,
            occurred_at="2026-12-01T12:00:00Z",
            producer="notification",
            payload={},
        )

    before = stored("OrderShipped")
    after = stored("OrderShipped")
    stored("NotificationSent")
    answer = {**subscriptions_default(), "loyalty": {"OrderShipped": before.seq}}
    provider(lambda: answer)

    assert list(Event.objects.filter(subscribed_events("loyalty"))) == [after]
    assert not Event.objects.filter(subscribed_events("nobody")).exists()


@pytest.mark.django_db
def test_a_replay_sends_the_stored_events_of_the_type_in_seq_order_through_the_publishers_send(
    monkeypatch,
):
    from services.bus import replay
    from services.bus.registry import NotSubscribed

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(replay, "event_send", lambda e, *, service: sent.append((service, e.seq)))

    def stored(type_: str, mode: str = Event.Mode.EVENTS) -> Event:
        return Event.objects.create(
            type=type_,
            version=1,
            order_id=1,
            occurred_at="2026-12-01T12:00:00Z",
            producer="notification",
            payload={},
            mode=mode,
        )

    first, _, second = stored("OrderShipped"), stored("NotificationSent"), stored("OrderShipped")
    stored("OrderShipped", mode=Event.Mode.SYNC)
    later = stored("OrderShipped")

    count = replay.events_replay(
        service="loyalty", event_type="OrderShipped", through_seq=later.seq - 1
    )

    assert count == 2
    assert sent == [("loyalty", first.seq), ("loyalty", second.seq)]
    with pytest.raises(NotSubscribed):
        replay.events_replay(service="loyalty", event_type="OrderCreated", through_seq=later.seq)
