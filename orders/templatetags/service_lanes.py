"""The services' lanes for every page, in the registry's order: the scripts keep no list."""

from __future__ import annotations

from django import template

from services.bus.registry import subscribers

register = template.Library()


@register.simple_tag
def service_lanes() -> list[dict[str, str]]:
    return [{"name": s.name, "title": s.title, "short": s.short} for s in subscribers().values()]
