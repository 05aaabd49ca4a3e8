"""Site-wide views that belong to no service."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET


@csrf_exempt  # read-only: any other method is answered 405, not 403
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """A liveness probe, and the no-op view the benchmark compares POST /orders with."""
    return HttpResponse(b"ok", content_type="text/plain")
