"""The services' lanes for every page, in the registry's order: the scripts keep no list."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from services.bus.registry import subscribers

register = template.Library()


@register.simple_tag
def service_lanes() -> list[dict[str, str | bool]]:
    """Every service's lane. ``core``: subscribed to something by default, so its lane is on
    every journey; a service that joins later (loyalty) shows only on a journey it took part in."""
    return [
        {
            "name": s.name,
            "title": s.title,
            "short": s.short,
            "core": bool(s.subscribed_by_default),
        }
        for s in subscribers().values()
    ]


def lanes_for(producers: Iterable[str]) -> list[dict[str, str | bool]]:
    """The lanes of one order's journey: the core ones, and those of the services among its
    events' producers."""
    seen = set(producers)
    return [lane for lane in service_lanes() if lane["core"] or lane["name"] in seen]
