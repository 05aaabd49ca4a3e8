"""What the bus itself keeps: each service's inbox (shape only) and the dead letters."""

from __future__ import annotations

from django.db import models


class Inbox(models.Model):
    """The ids of events a service has handled, written in the same transaction as the effect.

    Each service has its own concrete inbox table, so it owns its whole state.
    """

    event_id = models.UUIDField(primary_key=True)
    event_type = models.CharField(max_length=40)
    order_id = models.BigIntegerField(db_index=True)
    handled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class DeadLetter(models.Model):
    """An event a service could not handle after all its retries, kept for a redrive."""

    service = models.CharField(max_length=20, db_index=True)
    event_id = models.UUIDField(db_index=True)
    event_type = models.CharField(max_length=40)
    order_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    envelope = models.JSONField()
    error = models.TextField()
    attempts = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    redriven_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event_type} for {self.service} (order {self.order_id})"
