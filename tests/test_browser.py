"""The live pages in headless Chromium against the real stack: daphne, the worker, Redis.

Nothing is faked: orders go through the real form or the real order service, the worker runs
the pipeline, and the pages learn everything over their WebSockets.
"""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from orders.contract import OrderRequest
from orders.models import Order
from orders.placement import order_place
from services.bus.models import Event
from services.bus.relay import outbox_relay
from tests.helpers import event_types, wait_terminal

pytestmark = [pytest.mark.browser, pytest.mark.stack, pytest.mark.django_db(transaction=True)]

ARTICLE = OrderRequest(userId=123, productId=456, quantity=1, paymentToken="tok_abc123")
# OrderCreated, PaymentProcessed, InventoryUpdated, OrderConfirmed, NotificationSent, OrderShipped
JOURNEY = 6

# Records every status an order's badge shows, so a test can tell the badge moved on its own.
_WATCH_BADGES = """() => {
  window.__sameDocument = true;
  window.__badges = [];
  new MutationObserver(() => {
    for (const row of document.querySelectorAll('#orders .order-row')) {
      const seen = `${row.dataset.order}:${row.querySelector('.badge').textContent}`;
      if (!window.__badges.includes(seen)) window.__badges.push(seen);
    }
  }).observe(document.getElementById('orders'),
             {subtree: true, childList: true, characterData: true});
}"""


def _live(page) -> None:
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")


def _join(part, page):
    return page.locator(f'.join-part[data-part="{part}"]')


def _place_while_the_broker_is_away(broker_proxy) -> Order:
    """An order whose OrderCreated waits in the outbox until ``outbox_relay`` sends it."""
    broker_proxy.stop()
    try:
        order, _ = order_place(request=ARTICLE)
    finally:
        broker_proxy.start()
    assert event_types(order.pk) == ["OrderCreated"]
    return order


def test_an_order_placed_from_the_form_moves_to_shipped_without_a_reload(page, customer, product):
    page.goto("/")
    _live(page)
    page.evaluate(_WATCH_BADGES)

    page.locator("#buy-button").click()

    expect(page.locator("#buy-result")).to_contain_text("202 Accepted")
    order = Order.objects.get()
    badge = page.locator(f'#orders [data-order="{order.pk}"] .badge')
    expect(badge).to_have_text("SHIPPED")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    badges = page.evaluate("window.__badges")
    seen = [s.split(":")[1] for s in badges if s.startswith(f"{order.pk}:")]
    assert seen[0] == "INITIATED" and seen[-1] == "SHIPPED"
    expect(page.locator(f'#feed [data-order="{order.pk}"]')).to_have_count(JOURNEY)
    expect(page.locator('[data-stock-of="456"]')).to_have_text("49 in stock")


def test_the_order_page_fills_in_its_swimlane_as_the_events_arrive(
    page, customer, product, broker_proxy
):
    order = _place_while_the_broker_is_away(broker_proxy)
    page.goto(f"/orders/{order.pk}")
    _live(page)
    rows = page.locator("#rows .lane-row[data-seq]")
    expect(rows).to_have_count(1)
    expect(page.locator("#rows .lane-row.pending .mark.ghost")).to_have_count(3)
    expect(_join("payment", page)).to_have_attribute("data-state", "waiting")

    assert outbox_relay(older_than_s=0) == 1

    expect(page.locator("#order-status")).to_have_text("SHIPPED")
    expect(rows).to_have_count(JOURNEY)
    types = [row.get_attribute("data-type") for row in rows.all()]
    assert types == event_types(order.pk)
    assert types[0] == "OrderCreated" and types[-1] == "OrderShipped"
    for part in ("payment", "inventory"):
        expect(_join(part, page)).to_have_attribute("data-state", "done")
    # Every event but the first has a cause on the page, and the join waited for one more.
    expect(page.locator("#arrows path.link:not(.join)")).to_have_count(JOURNEY - 1)
    assert page.locator("#arrows path.link.join").count() >= 1
    expect(page.locator("#total-label")).to_have_text("202 → SHIPPED")
    expect(page.locator("#rows .lane-row.pending")).to_have_count(0)

    page.locator('#rows [data-type="PaymentProcessed"] .row-label').click()
    expect(page.locator("#inspector .schema-name")).to_have_text("PaymentProcessed v1")
    expect(page.locator("#inspector pre.json").first).to_contain_text('"tokenLast4"')


def test_a_finished_order_can_be_rewatched_from_its_stored_events(page, customer, product):
    order, _ = order_place(request=ARTICLE)
    wait_terminal(order.pk)
    page.goto(f"/orders/{order.pk}")
    rows = page.locator("#rows .lane-row[data-seq]")
    expect(rows).to_have_count(JOURNEY)

    page.locator("#speed").select_option("50")
    page.locator("#rewatch").click()

    expect(page.locator("#rewatch")).to_have_text("■ Stop")
    assert rows.count() < JOURNEY, "the re-watch did not start from the first event"
    expect(page.locator("#rewatch")).to_have_text("▶ Re-watch", timeout=60_000)
    expect(rows).to_have_count(JOURNEY)


def test_the_shop_page_catches_up_after_its_socket_was_killed(page, customer, product):
    page.goto("/")
    _live(page)

    page.evaluate("checkoutLive.socket.drop(120000)")
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    order, _ = order_place(request=ARTICLE)
    wait_terminal(order.pk)
    assert page.locator(f'#feed [data-order="{order.pk}"]').count() == 0
    page.locator("#drop").click()  # now "Reconnect now"

    expect(page.locator(f'#orders [data-order="{order.pk}"] .badge')).to_have_text("SHIPPED")
    feed = page.locator(f'#feed [data-order="{order.pk}"]')
    expect(feed).to_have_count(JOURNEY)
    seqs = [int(item.get_attribute("data-seq")) for item in feed.all()]
    assert seqs == sorted(seqs, reverse=True), "the feed is not newest first"
    assert page.evaluate("checkoutLive.socket.stats.reconnects") == 1
    expect(page.locator("#conn")).to_contain_text(f"caught up {JOURNEY} missed")


def test_the_order_page_catches_up_after_its_socket_was_killed(
    page, customer, product, broker_proxy
):
    order = _place_while_the_broker_is_away(broker_proxy)
    page.goto(f"/orders/{order.pk}")
    _live(page)
    rows = page.locator("#rows .lane-row[data-seq]")
    expect(rows).to_have_count(1)

    page.evaluate("checkoutLive.socket.drop(120000)")
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    outbox_relay(older_than_s=0)
    wait_terminal(order.pk)
    assert rows.count() == 1
    page.evaluate("checkoutLive.socket.reconnect()")

    expect(rows).to_have_count(JOURNEY)
    expect(page.locator("#order-status")).to_have_text("SHIPPED")
    assert [row.get_attribute("data-type") for row in rows.all()] == event_types(order.pk)


def test_a_declined_token_shows_cancelled_with_the_compensation_drawn(page, customer, product):
    page.goto("/")
    _live(page)
    page.locator("label.token", has_text="tok_declined").click()
    page.locator("#buy-button").click()
    page.locator("#buy-result a").click()

    expect(page.locator("#order-status")).to_have_text("CANCELLED")
    expect(page.locator('#rows [data-type="OrderCancelled"]')).to_have_count(1)
    expect(page.locator('#rows [data-type="PaymentFailed"]')).to_have_class(
        re.compile(r"\bkind-failure\b")
    )
    for compensation in page.locator("#rows .lane-row.kind-compensation").all():
        assert compensation.get_attribute("data-type") in {
            "InventoryReleased",
            "PaymentRefunded",
            "OrderCancelled",
        }
    expect(page.locator('#rows [data-type="OrderCancelled"]')).to_have_class(
        re.compile(r"\bkind-compensation\b")
    )
    assert page.locator("#arrows path.link.comp").count() >= 1
    expect(_join("payment", page)).to_have_attribute("data-state", "failed")
    expect(page.locator("#total-label")).to_have_text("202 → CANCELLED")


def test_the_compare_page_places_the_order_both_ways_and_times_them(page, customer, product):
    page.goto("/compare")

    page.locator("#run").click()

    expect(page.locator("#runs tr")).to_have_count(1, timeout=60_000)
    expect(page.locator("#sync-state")).to_contain_text("201 Created")
    expect(page.locator("#sync-hops .hop")).to_have_count(3)
    expect(page.locator("#events-state")).to_contain_text("SHIPPED")
    expect(page.locator("#events-arrivals .arrival")).to_have_count(JOURNEY)
    expect(page.locator("#timeline svg")).to_have_count(1)
    modes = sorted(Order.objects.values_list("mode", flat=True))
    assert modes == ["events", "sync"]
    assert set(Order.objects.values_list("status", flat=True)) == {"SHIPPED"}


def _journey_committed_without_broadcast(order: Order, model: Order) -> None:
    """Store the rest of ``model``'s journey as ``order``'s, as a process that died after each
    commit would have: in the log, never pushed to a page."""
    created = Event.objects.get(order_id=order.pk, type="OrderCreated")
    ids = {Event.objects.get(order_id=model.pk, type="OrderCreated").event_id: created.event_id}
    for event in (
        Event.objects.filter(order_id=model.pk).exclude(type="OrderCreated").order_by("seq")
    ):
        copy = Event.objects.create(
            type=event.type,
            version=event.version,
            order_id=order.pk,
            occurred_at=timezone.now(),
            producer=event.producer,
            causation_id=ids[event.causation_id],
            payload=event.payload,
            published_at=timezone.now(),
        )
        ids[event.event_id] = copy.event_id


def test_the_order_page_finds_events_whose_broadcast_never_came(
    page, customer, product, broker_proxy
):
    model, _ = order_place(request=ARTICLE)
    wait_terminal(model.pk)
    order = _place_while_the_broker_is_away(broker_proxy)
    page.goto(f"/orders/{order.pk}")
    _live(page)
    rows = page.locator("#rows .lane-row[data-seq]")
    expect(rows).to_have_count(1)

    _journey_committed_without_broadcast(order, model)

    # No later message shows a gap and the socket never dropped: only its quiet check finds them
    # (after 2 s of quiet, then 4 s, 8 s ...).
    expect(rows).to_have_count(JOURNEY, timeout=20_000)
    expect(page.locator("#order-status")).to_have_text("SHIPPED")
    assert [row.get_attribute("data-type") for row in rows.all()] == event_types(order.pk)
    assert page.evaluate("checkoutLive.socket.stats.reconnects") == 0
    assert page.evaluate("checkoutLive.socket.stats.quietChecks") >= 1


def test_the_shop_page_finds_an_order_whose_last_broadcast_never_came(
    page, customer, product, broker_proxy
):
    model, _ = order_place(request=ARTICLE)
    wait_terminal(model.pk)
    page.goto("/")
    _live(page)
    order = _place_while_the_broker_is_away(broker_proxy)
    badge = page.locator(f'#orders [data-order="{order.pk}"] .badge')
    expect(badge).to_have_text("INITIATED")

    _journey_committed_without_broadcast(order, model)

    expect(badge).to_have_text("SHIPPED", timeout=20_000)
    expect(page.locator(f'#feed [data-order="{order.pk}"]')).to_have_count(JOURNEY)
    assert page.evaluate("checkoutLive.socket.stats.reconnects") == 0
