from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from services.bus.dead_letters import dead_letters_redrive
from services.bus.models import DeadLetter


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "service",
        "event_type",
        "order_id",
        "attempts",
        "created_at",
        "redriven_at",
    ]
    list_filter = ["service", "event_type", "redriven_at"]
    search_fields = ["=order_id", "=event_id"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["redrive"]

    @admin.action(description="Redrive: deliver the selected events again")
    def redrive(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        count = dead_letters_redrive(queryset)
        self.message_user(request, f"{count} event(s) sent again", messages.SUCCESS)
