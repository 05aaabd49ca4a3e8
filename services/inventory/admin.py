from django.contrib import admin

from services.inventory.models import Reservation, Stock


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["product_id", "on_hand", "initial"]


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ["order_id", "product_id", "quantity", "state", "updated_at"]
    list_filter = ["state"]
    search_fields = ["=order_id", "=product_id"]
    readonly_fields = [f.name for f in Reservation._meta.fields]
