from django.contrib import admin

from services.payment.models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "order_id",
        "status",
        "amount",
        "token_last4",
        "created_at",
        "refunded_at",
    ]
    list_filter = ["status"]
    search_fields = ["=order_id"]
    readonly_fields = [f.name for f in Payment._meta.fields]
