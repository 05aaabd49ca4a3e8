"""The benchmark's floor for POST /orders: a correct outbox write, routed only for the bench."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest
from django.db import IntegrityError
from django.test import RequestFactory
from django.urls import Resolver404, resolve

from bench import minimal_write as baseline
from checkout_site.celery import app
from orders.models import Order
from services.bus.models import Event

BODY = {"userId": 123, "productId": 456, "quantity": 2, "paymentToken": "tok_abc123"}


def _site_urls() -> ModuleType:
    """A fresh copy of checkout_site/urls.py, read under the settings of the moment."""
    import checkout_site.urls

    spec = importlib.util.spec_from_file_location("_site_urls", checkout_site.urls.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _queued() -> list[Any]:
    """The messages waiting on the baseline's queue in the real broker, taken off it."""
    taken = []
    with app.connection_for_write() as conn:
        while (message := conn.default_channel.basic_get(baseline.QUEUE, no_ack=True)) is not None:
            taken.append(message.decode())
    return taken


@pytest.fixture
def marked(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The seqs the view hands to the outbox's published marks."""
    calls: list[list[int]] = []
    monkeypatch.setattr(baseline, "published_mark", calls.append)
    return calls


def _post() -> Any:
    request = RequestFactory().post(
        "/bench/minimal-write", data=json.dumps(BODY), content_type="application/json"
    )
    return baseline.minimal_write(request)


def test_it_is_not_routed_in_a_normal_deployment(settings: Any) -> None:
    settings.BENCH_MINIMAL_WRITE = False
    with pytest.raises(Resolver404):
        resolve("/bench/minimal-write", urlconf=_site_urls())


def test_it_is_routed_when_the_bench_stack_asks_for_it(settings: Any) -> None:
    settings.BENCH_MINIMAL_WRITE = True
    match = resolve("/bench/minimal-write", urlconf=_site_urls())
    assert match.func is baseline.minimal_write


def test_it_stores_an_order_and_its_event_then_publishes_one_message_after_commit(
    customer: Any, product: Any, marked: list[list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    _queued()
    with django_capture_on_commit_callbacks(execute=True):
        response = _post()
        assert _queued() == []  # not before the transaction commits
        assert marked == []
    assert response.status_code == 202
    order = Order.objects.get(pk=json.loads(response.content)["orderId"])
    assert (order.customer_id, order.quantity, str(order.amount)) == (123, 2, "178.00")
    assert order.payment_token_masked == "tok_****c123"
    event = Event.objects.get(order_id=order.pk)
    assert event.type == baseline.EVENT_TYPE
    assert event.published_at is None  # the marks thread writes it, as for every event
    messages = _queued()
    assert len(messages) == 1
    args, _kwargs, _embed = messages[0]
    assert args[0]["seq"] == event.seq
    assert marked == [[event.seq]]


def test_it_publishes_nothing_and_keeps_no_order_when_the_event_insert_fails(
    customer: Any,
    product: Any,
    marked: list[list[int]],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    def refuse(**_: Any) -> Event:
        raise IntegrityError("event log refused the row")

    monkeypatch.setattr(Event.objects, "create", refuse)
    orders_before = Order.objects.count()
    _queued()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(IntegrityError),
    ):
        _post()
    assert callbacks == []
    assert Order.objects.count() == orders_before
    assert _queued() == []
    assert marked == []
