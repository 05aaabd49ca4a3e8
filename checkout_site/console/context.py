"""Template context for every page: which services the operator has stopped, and which
guarantees the levers give up now.

Pages mark the stopped ones with ``<body data-services-down="notification payment">`` (or per
element), base.html shows the levers' banner, and static/js/service-status.js keeps both
current without a reload.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest

from checkout_site.console.control import services_running
from checkout_site.console.levers import levers_unsafe


def bus_status(request: HttpRequest) -> dict[str, Any]:
    try:
        running = services_running()
    except DatabaseError:
        running = {}
    try:
        unsafe = levers_unsafe()
    except DatabaseError:
        unsafe = []
    return {
        "services_down": sorted(name for name, up in running.items() if not up),
        "levers_unsafe": unsafe,
    }
