"""Tracing for the whole site: a span per HTTP request, exported over OTLP when asked.

The bus carries the trace context from event to event (services/bus/tracing.py); this module
installs the SDK in each process when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the exporter reads
it and the other standard OTEL_* variables itself), and does nothing otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from opentelemetry import trace
from opentelemetry.trace import SpanKind

_tracer = trace.get_tracer("checkout.site")


def tracing_install() -> bool:
    """Export this process's spans to the OTLP endpoint, if one is set; returns whether."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", "checkout-live")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


class RequestSpanMiddleware:
    """Each request is a server span; an order's events (and so its whole journey) hang under
    the span of the POST that placed it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with _tracer.start_as_current_span(
            f"{request.method} {request.path}",
            kind=SpanKind.SERVER,
            attributes={"http.request.method": request.method or "", "url.path": request.path},
        ) as span:
            response = self.get_response(request)
            span.set_attribute("http.response.status_code", response.status_code)
            return response
