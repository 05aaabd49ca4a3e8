from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from orders.models import Customer, Order, Product
from services.bus.admin import payload_html


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
    readonly_fields = [*(f.name for f in Order._meta.fields), "events_table"]
    list_select_related = ["customer", "product"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description="events (token masked)")
    def events_table(self, obj: Order) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>v{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (e.seq, e.type, e.version, e.producer, e.occurred_at, payload_html(e.payload))
                for e in obj.events
            ),
        )
        return format_html(
            "<table><tr><th>seq</th><th>type</th><th>version</th><th>producer</th>"
            "<th>occurred</th><th>payload</th></tr>{}</table>",
            rows,
        )


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "price", "stock"]
    readonly_fields = ["stock", "stock_seq"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "email"]
    search_fields = ["name", "email"]
