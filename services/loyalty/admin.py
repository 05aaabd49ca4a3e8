from django.contrib import admin

from services.loyalty.models import PointsAward, PointsBalance


@admin.register(PointsAward)
class PointsAwardAdmin(admin.ModelAdmin):
    list_display = ["id", "customer_id", "order_id", "points", "awarded_at"]
    search_fields = ["=customer_id", "=order_id"]
    readonly_fields = [f.name for f in PointsAward._meta.fields]


@admin.register(PointsBalance)
class PointsBalanceAdmin(admin.ModelAdmin):
    list_display = ["customer_id", "points", "updated_at"]
    search_fields = ["=customer_id"]
    readonly_fields = [f.name for f in PointsBalance._meta.fields]
