"""Template context for every page: which services the operator has stopped.

Pages mark them with ``<body data-services-down="notification payment">`` (or per element), and
static/js/service-status.js keeps that attribute current without a reload.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest

from checkout_site.console.control import services_running


def bus_status(request: HttpRequest) -> dict[str, Any]:
    try:
        running = services_running()
    except DatabaseError:
        running = {}
    return {"services_down": sorted(name for name, up in running.items() if not up)}
