"""What the bus keeps: the event log (which is also the outbox), each service's inbox (shape
only), the dead letters, and how each event was delivered to each service."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models


class Event(models.Model):
    """One stored event: the envelope of the contract, and its outbox state.

    ``order_id`` is a plain column, not a foreign key: every service appends to the log, and a
    key to the order service's table would make each append lock that order's row (FOR KEY
    SHARE), which is how a deadlock between the order service and the log's lock came about.
    """

    class Mode(models.TextChoices):
        # Delivered to every subscribing service's queue.
        EVENTS = "events", "delivered"
        # Recorded for the log and the live pages only: the request-response checkout's record
        # of what it did by calling the services directly. Never delivered, never reconciled.
        SYNC = "sync", "recorded only"

    seq = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40, db_index=True)
    version = models.PositiveSmallIntegerField()
    order_id = models.BigIntegerField(db_index=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.EVENTS)
    occurred_at = models.DateTimeField()
    producer = models.CharField(max_length=20)
    causation_id = models.UUIDField(null=True, blank=True)
    payload = models.JSONField()
    # What travels with the event but is not its content: the trace context it was emitted in.
    metadata = models.JSONField(default=dict, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table the log has always had: it moved here from the order service unchanged.
        db_table = "orders_event"
        ordering = ["seq"]
        indexes = [
            models.Index(
                fields=["seq"],
                name="event_unpublished",
                condition=models.Q(published_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type} (order {self.order_id})"

    def envelope(self) -> dict[str, Any]:
        """The event as the contract's JSON envelope, exactly as consumers receive it."""
        envelope = {
            "seq": self.seq,
            "eventId": str(self.event_id),
            "type": self.type,
            "version": self.version,
            "orderId": self.order_id,
            "occurredAt": self.occurred_at.isoformat(),
            "producer": self.producer,
            "causationId": str(self.causation_id) if self.causation_id else None,
            "payload": self.payload,
        }
        if self.metadata:
            envelope["metadata"] = self.metadata
        return envelope


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


class Delivery(models.Model):
    """How one event reached one subscribing service: one row per (event, service).

    Written in the handler's own transaction when it is handled, so the common path costs one
    insert; failures, retries and duplicates update the same row.
    """

    class Status(models.TextChoices):
        HANDLED = "handled"
        RETRYING = "retrying"
        DEAD = "dead", "dead-lettered"

    event_id = models.UUIDField()
    service = models.CharField(max_length=20)
    seq = models.BigIntegerField()
    event_type = models.CharField(max_length=40)
    order_id = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    # The attempt that settled it (1 = first try), and how many failed attempts were retried.
    attempts = models.PositiveIntegerField(default=1)
    retries = models.PositiveIntegerField(default=0)
    # Deliveries after the first that the inbox recognised and skipped.
    duplicates = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Injected faults that acted on this delivery, as the operator would name them.
    faults = models.CharField(max_length=400, blank=True)
    received_at = models.DateTimeField()
    settled_at = models.DateTimeField(db_index=True)
    # Stored -> picked up by the worker (commit, publish, queue wait, backoff), and handler time.
    wait_ms = models.FloatField(null=True, blank=True)
    handler_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["seq", "service"]
        constraints = [
            models.UniqueConstraint(fields=["event_id", "service"], name="one_delivery_per_service")
        ]
        # Few indexes, because every handled delivery writes a row: the unique pair finds an
        # event's deliveries, settled_at the recent ones, and a partial index the troubled few
        # (a clean handled row does not touch it).
        indexes = [
            models.Index(
                fields=["seq"],
                name="delivery_troubled",
                condition=models.Q(retries__gt=0)
                | models.Q(duplicates__gt=0)
                | ~models.Q(status="handled"),
            )
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} #{self.seq} to {self.service}: {self.status}"
