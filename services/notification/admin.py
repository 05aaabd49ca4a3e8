from django.contrib import admin

from services.notification.models import SentNotification


@admin.register(SentNotification)
class SentNotificationAdmin(admin.ModelAdmin):
    list_display = ["order_id", "kind", "to", "subject", "sent_at"]
    list_filter = ["kind"]
    search_fields = ["=order_id", "to"]
    readonly_fields = [f.name for f in SentNotification._meta.fields]
