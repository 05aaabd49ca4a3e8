from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from orders.models import Customer, Event, Order, Product
from services.bus.schemas import mask_payload


def _masked_json(payload: dict) -> str:
    return format_html("<pre>{}</pre>", json.dumps(mask_payload(payload), indent=2))


class _ReadOnly:
    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class EventInline(_ReadOnly, admin.TabularInline):
    model = Event
    ordering = ["seq"]
    fields = [
        "seq",
        "type",
        "version",
        "producer",
        "occurred_at",
        "causation_id",
        "payload_masked",
    ]
    readonly_fields = fields
    extra = 0

    @admin.display(description="payload (token masked)")
    def payload_masked(self, obj: Event) -> str:
        return _masked_json(obj.payload)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "status",
        "mode",
        "customer",
        "product",
        "quantity",
        "amount",
        "created_at",
    ]
    list_filter = ["status", "mode", "created_at"]
    search_fields = [
        "=id",
        "customer__name",
        "customer__email",
        "product__name",
        "=customer__id",
        "=product__id",
    ]
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [EventInline]
    list_select_related = ["customer", "product"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Event)
class EventAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["seq", "type", "order", "producer", "occurred_at", "published_at"]
    list_filter = ["type", "producer"]
    search_fields = ["=order__id", "=event_id"]
    fields = [
        "seq",
        "event_id",
        "type",
        "version",
        "order",
        "producer",
        "occurred_at",
        "causation_id",
        "published_at",
        "payload_masked",
    ]
    readonly_fields = fields

    @admin.display(description="payload (token masked)")
    def payload_masked(self, obj: Event) -> str:
        return _masked_json(obj.payload)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "price", "stock"]
    readonly_fields = ["stock", "stock_seq"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "email"]
    search_fields = ["name", "email"]
