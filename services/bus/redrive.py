"""Sending dead letters again, through the same idempotent path as any delivery."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from services.bus.models import DeadLetter
from services.bus.tasks import delivery_task


def dead_letters_redrive(letters: QuerySet[DeadLetter]) -> int:
    """Send each letter's event to its service again, through the same idempotent path."""
    count = 0
    for letter in letters.filter(redriven_at__isnull=True):
        with transaction.atomic():
            DeadLetter.objects.filter(pk=letter.pk).update(redriven_at=timezone.now())
            transaction.on_commit(
                lambda letter=letter: delivery_task(
                    letter.service, order_id=letter.order_id
                ).apply_async(args=(letter.service, letter.envelope), queue=letter.service)
            )
        count += 1
    return count
