"""One order, one trace: the trace context travels with every event, in its envelope's metadata.

An event stored records the span it was emitted under (the POST, or the delivery that caused
it) as W3C ``traceparent`` in ``Event.metadata``; the envelope carries it to the broker (and in
the Celery message's headers), and the delivery's span takes it as its parent. So the spans of an
order nest as its causation does: POST -> OrderCreated to payment -> PaymentProcessed to orders...
Nothing here exports: with no tracer provider installed (checkout_site/tracing.py installs one
when OTEL_EXPORTER_OTLP_ENDPOINT is set) every call is OpenTelemetry's no-op. A no-op span still
passes on the context it was given, so an event caused by a traced one carries that trace on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

tracer = trace.get_tracer("checkout.bus")
_propagator = TraceContextTextMapPropagator()


def trace_carrier() -> dict[str, str]:
    """The current span's context, to store with an event (empty when nothing is traced)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def trace_context(carrier: Mapping[str, str] | None) -> Context:
    return _propagator.extract(dict(carrier or {}))


@contextmanager
def delivery_span(
    *, service: str, event_type: str, seq: int, order_id: int, carrier: Mapping[str, str] | None
) -> Iterator[Span]:
    with tracer.start_as_current_span(
        f"{event_type} to {service}",
        context=trace_context(carrier),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.destination.name": service,
            "checkout.event.type": event_type,
            "checkout.event.seq": seq,
            "checkout.order.id": order_id,
        },
    ) as span:
        yield span


def trace_id() -> str:
    """The current trace's id, for a log line ("" when nothing is traced)."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""
