"""What the bus itself keeps: each service's inbox (shape only), the dead letters, and the
operator's levers and records: which services are stopped, which faults are injected, and how
each event was delivered to each service."""

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


class ServiceState(models.Model):
    """Whether the operator wants a service to consume its queue (no row: it runs).

    The broker-side truth is the workers' consumers; this row is what they are told again when a
    worker starts, so a stopped service stays stopped across reloads and restarts.
    """

    service = models.CharField(max_length=20, primary_key=True)
    running = models.BooleanField(default=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    def __str__(self) -> str:
        return f"{self.service}: {'running' if self.running else 'stopped'}"


class Fault(models.Model):
    """A fault the operator injected into one service, for every order or for one order."""

    class Kind(models.TextChoices):
        LATENCY = "latency", "added latency (ms)"
        FAILURE = "failure", "failure rate (0..1), retried then dead-lettered"
        DUPLICATE = "duplicate", "duplicate delivery of every event"
        DECLINE = "decline", "forced payment decline"
        OUT_OF_STOCK = "out_of_stock", "forced out of stock"

    service = models.CharField(max_length=20)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Milliseconds for latency, a probability for failure; unused by the others.
    value = models.FloatField(default=0)
    order_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["service", "kind", "id"]

    def __str__(self) -> str:
        return self.label()

    def label(self) -> str:
        what = {
            self.Kind.LATENCY: f"+{self.value:g} ms latency",
            self.Kind.FAILURE: f"{self.value:.0%} failures",
            self.Kind.DUPLICATE: "duplicate delivery",
            self.Kind.DECLINE: "forced decline",
            self.Kind.OUT_OF_STOCK: "forced out of stock",
        }[self.Kind(self.kind)]
        scope = f"order {self.order_id}" if self.order_id else "every order"
        return f"fault #{self.pk}: {what} at {self.service}, {scope}"


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
