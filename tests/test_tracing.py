"""One order, one trace: a span for the POST, one per delivery parented by causation, one per
broadcast; and log lines that say which order, event and trace they belong to."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.test import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from checkout_site.logs import JsonFormatter, TraceFilter
from services.bus.models import Delivery, Event
from tests.bus_sim import InProcessBus
from tests.helpers import post_order


class _Recorder(SpanExporter):
    """Keeps finished spans while a test listens; the provider is the process's, set once."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.listening = False

    def export(self, spans):  # type: ignore[no-untyped-def]
        if self.listening:
            self.spans.extend(spans)
        return SpanExportResult.SUCCESS


@pytest.fixture(scope="session")
def _recorder() -> _Recorder:
    recorder = _Recorder()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorder))
    trace.set_tracer_provider(provider)
    return recorder


@pytest.fixture
def spans(_recorder: _Recorder):
    _recorder.spans.clear()
    _recorder.listening = True
    yield _recorder.spans
    _recorder.listening = False


@pytest.fixture
def consumer_log(settings):
    """The deliveries' log lines as the console's handler writes them (filter and format)."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.addFilter(TraceFilter())
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["plain"]["format"]))
    logger = logging.getLogger("services.bus.consumer")
    logger.addHandler(handler)
    yield written
    logger.removeHandler(handler)


def _span_id(event: Event) -> int:
    # traceparent: version-traceid-spanid-flags
    return int(event.metadata["traceparent"].split("-")[2], 16)


@pytest.mark.django_db(transaction=True)
def test_one_order_is_one_trace_with_a_span_per_delivery_parented_by_causation(
    spans, customer, product, caplog, consumer_log, broker_proxy
):
    caplog.set_level(logging.INFO, logger="services.bus.consumer")
    # Every delivery happens here: with the broker cut, no worker elsewhere takes one (a worker's
    # own spans are not recorded, and its events would carry the POST's context instead).
    broker_proxy.stop()
    try:
        order_id = post_order(Client()).json()["orderId"]
        InProcessBus().drain()
    finally:
        broker_proxy.start()

    events = {e.event_id: e for e in Event.objects.filter(order_id=order_id)}
    assert Event.objects.get(order_id=order_id, type="OrderShipped")
    assert len({s.context.trace_id for s in spans}) == 1, "every span is in the order's trace"
    (post,) = [s for s in spans if s.name == "POST /orders"]
    deliveries = [s for s in spans if s.kind == trace.SpanKind.CONSUMER]
    assert len(deliveries) == Delivery.objects.filter(order_id=order_id).count() >= 7
    by_delivery = {
        (s.attributes["checkout.event.seq"], s.attributes["messaging.destination.name"]): s
        for s in deliveries
    }

    def emitted_in(event: Event) -> ReadableSpan:
        """The POST, or the producer's delivery of the cause; a handler that emits a chain in
        one transaction (NotificationSent, then OrderShipped) emits both in that delivery."""
        if event.causation_id is None:
            return post
        cause = events[event.causation_id]
        return by_delivery.get((cause.seq, event.producer)) or emitted_in(cause)

    for event in events.values():
        emitted_span = emitted_in(event)
        assert _span_id(event) == emitted_span.context.span_id, event.type
        for (seq, _service), span in by_delivery.items():
            if seq == event.seq:
                assert span.parent.span_id == emitted_span.context.span_id
    assert [s for s in spans if s.name == "broadcast to the live pages"]

    trace_id = format(post.context.trace_id, "032x")
    lines = [r for r in caplog.records if r.name == "services.bus.consumer"]
    assert len(lines) == len(deliveries)
    shipped = next(r for r in lines if r.event_type == "OrderShipped")
    assert (shipped.order_id, shipped.seq) == (order_id, events_seq(events, "OrderShipped"))
    written = [line for line in consumer_log.getvalue().splitlines() if "OrderShipped #" in line]
    assert written and all(f"trace={trace_id}" in line for line in written)
    assert json.loads(JsonFormatter().format(shipped))["order_id"] == order_id


def events_seq(events: dict, type_: str) -> int:
    return next(e.seq for e in events.values() if e.type == type_)


def test_a_log_line_carries_the_trace_it_was_written_in(_recorder):
    tracer = trace.get_tracer("tests")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "handled", None, None)
    record.order_id, record.seq = 7, 42
    with tracer.start_as_current_span("a delivery") as span:
        TraceFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))

    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert (line["order_id"], line["seq"], line["message"]) == (7, 42, "handled")
    assert record.trace == f" trace={line['trace_id']}"


def test_nothing_is_traced_or_stored_when_no_tracer_is_installed_for_the_span(db):
    from services.bus.tracing import trace_carrier, trace_id

    # Outside any span there is no context to carry, traced or not.
    assert trace_carrier() == {} and trace_id() == ""
