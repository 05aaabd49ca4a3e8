import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from services.bus.models import DeadLetter, Event
from services.bus.redrive import dead_letters_redrive
from services.bus.schemas import mask_payload, mask_tokens_in


def payload_html(payload: dict) -> str:
    return format_html("<pre>{}</pre>", json.dumps(mask_payload(payload), indent=2))


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """The log is read-only: it is the truth that statuses and projections are rebuilt from."""

    list_display = ["seq", "type", "order_id", "producer", "mode", "occurred_at", "published_at"]
    list_filter = ["type", "producer", "mode"]
    search_fields = ["=order_id", "=event_id"]
    fields = [
        "seq",
        "event_id",
        "type",
        "version",
        "order_id",
        "mode",
        "producer",
        "occurred_at",
        "causation_id",
        "published_at",
        "payload_masked",
    ]
    readonly_fields = fields

    @admin.display(description="payload (token masked)")
    def payload_masked(self, obj: Event) -> str:
        return payload_html(obj.payload)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False


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
    # The envelope keeps the token whole, because a redrive must deliver what was sent; the
    # screen shows it masked, like every other page.
    fields = [
        "service",
        "event_id",
        "event_type",
        "order_id",
        "attempts",
        "created_at",
        "redriven_at",
        "error_masked",
        "envelope_masked",
    ]
    readonly_fields = fields
    actions = ["redrive"]

    @admin.display(description="error")
    def error_masked(self, obj: DeadLetter) -> str:
        # A validation error quotes the bad input, a token included.
        return format_html("<pre>{}</pre>", mask_tokens_in(obj.error))

    @admin.display(description="envelope (token masked)")
    def envelope_masked(self, obj: DeadLetter) -> str:
        envelope = dict(obj.envelope)
        if isinstance(envelope.get("payload"), dict):
            envelope["payload"] = mask_payload(envelope["payload"])
        text = mask_tokens_in(json.dumps(envelope, indent=2))
        return format_html("<pre>{}</pre>", text)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Redrive: deliver the selected events again", permissions=["change"])
    def redrive(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        count = dead_letters_redrive(queryset)
        self.message_user(request, f"{count} event(s) sent again", messages.SUCCESS)
