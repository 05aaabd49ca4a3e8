"""The outbox relay: sends events that committed but never reached the broker."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from services.bus.models import Event
from services.bus.outbox import outbox_flush, published_marks_write


def outbox_relay(*, older_than_s: float | None = None, limit: int = 500) -> int:
    """Publish unsent events older than ``older_than_s``; returns how many the broker took.

    The delay leaves the committing process time to flush its own events first; if both send,
    the consumers' inboxes drop the second copy.
    """
    if older_than_s is None:
        older_than_s = settings.OUTBOX_RELAY_AFTER_SECONDS
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stale = list(
        Event.objects.filter(published_at__isnull=True, occurred_at__lte=cutoff).order_by("seq")[
            :limit
        ]
    )
    if not stale:
        return 0
    # Pages were told at commit time; a page that missed it catches up on the next seq it sees.
    sent = outbox_flush(stale)
    # Marked now, not by the marks thread: the next pass must not find them unsent again.
    published_marks_write()
    return len(sent)
