"""Small helpers the pipeline tests share."""

from __future__ import annotations

from typing import Any

from django.test import Client

from orders.models import TERMINAL_STATUSES, Order, OrderStatus
from services.bus.models import Event
from tests.conftest import wait_for

# The events of an order that ships, in the order the sync checkout records them.
SHIPPED_JOURNEY = [
    "OrderCreated",
    "PaymentProcessed",
    "InventoryUpdated",
    "OrderConfirmed",
    "NotificationSent",
    "OrderShipped",
]
ARTICLE_ORDER = {"userId": 123, "productId": 456, "quantity": 1, "paymentToken": "tok_abc123"}


def running_commands(root: Any) -> dict[Any, str]:
    """The live descendants of a ``psutil.Process``, each with its command line.

    A child that exited but is not yet reaped (a zombie) or is already gone has no command line;
    it is left out rather than failing whoever asked.
    """
    import psutil

    found = {}
    for child in root.children(recursive=True):
        try:
            found[child] = " ".join(child.cmdline())
        except psutil.Error:
            continue
    return found


def alive(process: Any) -> bool:
    """Whether a ``psutil.Process`` still runs: not exited, not a zombie waiting to be reaped."""
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def permissions_grant(user: Any, names: tuple[str, ...] | list[str]) -> Any:
    """Give a user permissions named ``app_label.codename``; returns the user, reloaded."""
    from django.contrib.auth.models import Permission

    for name in names:
        app_label, codename = name.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    # has_perm caches what it read; a fresh instance reads the grants.
    return type(user).objects.get(pk=user.pk)


def post_order(client: Client, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return client.post(
        "/orders", data=body or ARTICLE_ORDER, content_type="application/json", headers=headers
    )


def wait_terminal(order_id: int, timeout: float = 20.0) -> Order:
    """Wait until the order is SHIPPED or CANCELLED and every event it caused is in."""

    def done() -> Order | None:
        order = Order.objects.get(pk=order_id)
        types = set(order.events.values_list("type", flat=True))
        if order.status == OrderStatus.SHIPPED and "OrderShipped" in types:
            return order
        if order.status == OrderStatus.CANCELLED and "NotificationSent" in types:
            return order
        return None

    return wait_for(done, timeout=timeout)


def event_types(order_id: int) -> list[str]:
    return list(
        Event.objects.filter(order_id=order_id).order_by("seq").values_list("type", flat=True)
    )


__all__ = ["TERMINAL_STATUSES", "permissions_grant", "post_order", "wait_terminal", "event_types"]


def wait_drained(timeout: float = 30.0) -> None:
    """Wait until no message waits in any service queue and no worker holds one."""
    from checkout_site.celery import app
    from services.bus.broker import queue_depths

    def idle() -> bool:
        # A connection of its own: a pooled one may have died in an earlier Redis restart.
        with app.connection_for_write() as conn:
            inspect = app.control.inspect(timeout=0.5, connection=conn)
            busy = sum(len(v) for v in (inspect.active() or {}).values())
            busy += sum(len(v) for v in (inspect.reserved() or {}).values())
        return sum(queue_depths().values()) == 0 and busy == 0

    wait_for(idle, timeout=timeout, interval=0.2)


def user_make(username: str, *, staff: bool, password: str = "pw-for-tests-only") -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        username, f"{username}@example.com", password, is_staff=staff
    )


def snap(page: Any, name: str) -> None:
    """Save what the browser sees when CONSOLE_SCREENSHOTS=<dir> is set."""
    import os
    from pathlib import Path

    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def broadcast_lost_then_one_sent(order_id: int) -> tuple[int, int]:
    """Two events of the order, (lost, sent): the first is stored like any other but its
    broadcast never happens, as when the channel layer drops a group message; the second is
    emitted and broadcast as usual."""
    from django.db import transaction
    from django.utils import timezone

    from services.bus import schemas
    from services.bus.outbox import event_emit

    lost = Event.objects.create(
        type="NotificationSent",
        version=1,
        order_id=order_id,
        occurred_at=timezone.now(),
        producer="notification",
        payload={"kind": "confirmed", "to": "ada@example.com", "subject": "again"},
        published_at=timezone.now(),
    )
    with transaction.atomic():
        sent = event_emit(
            order_id=order_id,
            payload=schemas.NotificationSent(kind="confirmed", to="a@b.c", subject="x"),
            deliver=False,
        )
    return lost.seq, sent.seq
