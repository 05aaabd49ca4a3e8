"""The operator's records: which services are stopped, which faults are injected, every
change of a lever, and the record of everything the operator switched (``RecordEntry``).

Their tables keep the names they had when the bus held them (``bus_*``): the console took them
over with their rows.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ServiceState(models.Model):
    """Whether the operator wants a service to consume its queue (no row: it runs).

    The broker-side truth is the workers' consumers; this row is what they are told again when a
    worker starts, so a stopped service stays stopped across reloads and restarts.
    """

    service = models.CharField(max_length=20, primary_key=True)
    running = models.BooleanField(default=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "bus_servicestate"

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
        CRASH = "crash", "worker process dies in the handler (once per event)"

    service = models.CharField(max_length=20)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Milliseconds for latency, a probability for failure; unused by the others.
    value = models.FloatField(default=0)
    order_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "bus_fault"
        ordering = ["service", "kind", "id"]

    def __str__(self) -> str:
        return self.label()

    def label(self) -> str:
        scope = f"order {self.order_id}" if self.order_id else "every order"
        return f"fault #{self.pk}: {self.what()} at {self.service}, {scope}"

    def what(self) -> str:
        """What the fault does, in a few words: "duplicate delivery", "+200 ms latency"."""
        return {
            self.Kind.LATENCY: f"+{self.value:g} ms latency",
            self.Kind.FAILURE: f"{self.value:.0%} failures",
            self.Kind.DUPLICATE: "duplicate delivery",
            self.Kind.DECLINE: "forced decline",
            self.Kind.OUT_OF_STOCK: "forced out of stock",
            self.Kind.CRASH: "worker crash",
        }[self.Kind(self.kind)]


class WorkerBeat(models.Model):
    """A worker's heartbeat: which queues it consumed when it last said it was alive.

    The operator's wish (``ServiceState``) says whether a service should consume; this says
    whether anything does. A worker killed -9 stops beating, and its row goes stale.
    """

    worker = models.CharField(max_length=200, primary_key=True)
    queues = models.JSONField(default=list)
    beat_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.worker}: {', '.join(self.queues) or 'nothing'} at {self.beat_at:%H:%M:%S}"


class Crash(models.Model):
    """A worker process a crash fault killed: one per event and service, so the event that
    comes back (at least once) is handled, and the console can say which delivery died."""

    fault_id = models.BigIntegerField()
    service = models.CharField(max_length=20)
    event_id = models.UUIDField()
    order_id = models.BigIntegerField(db_index=True)
    crashed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "event_id"], name="one_crash_per_delivery")
        ]

    def __str__(self) -> str:
        return f"worker crashed on {self.event_id} at {self.service}"


class LeverChange(models.Model):
    """One pull of a lever, as the operator's record keeps it; a lever's state is its newest
    row (no row: the default). A schema lever's ``service`` is the event type it switches and
    its ``value`` the version the producer emits; a subscription's row is per service and event
    type."""

    class Lever(models.TextChoices):
        IDEMPOTENCY = "idempotency"
        DELIVERY = "delivery"
        SCHEMA = "schema"
        SUBSCRIPTION = "subscription"

    lever = models.CharField(max_length=16, choices=Lever.choices)
    service = models.CharField(max_length=20)
    value = models.CharField(max_length=20)
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    changed_by = models.CharField(max_length=150, blank=True)
    # Subscriptions only: which event type, whether the log was replayed to the service, and
    # the seq after which the type's events are the service's to handle (0 with a replay).
    event_type = models.CharField(max_length=40, blank=True)
    replay = models.BooleanField(default=False)
    since_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.label()}, {self.changed_at:%H:%M:%S}"

    def label(self) -> str:
        return lever_label(
            lever=self.lever,
            service=self.service,
            value=self.value,
            event_type=self.event_type,
            replay=self.replay,
        )


def lever_label(*, lever: str, service: str, value: str, event_type: str, replay: bool) -> str:
    """A pull as the operator's record names it: "idempotency off at payment".

    A function of the row's fields alone, so the migration that started the record could name
    the pulls made before it.
    """
    if lever == LeverChange.Lever.SCHEMA:
        return f"schema {service} v{value}"
    if lever == LeverChange.Lever.SUBSCRIPTION:
        replayed = ", replayed from the log" if replay else ""
        return f"subscription {value} at {service} for {event_type}{replayed}"
    return f"{lever} {value} at {service}"


class RecordEntry(models.Model):
    """One entry of the operator's record: a lever pulled, or a fault switched on or off.

    The label is written when the entry is, because what it names changes or goes away: a
    fault's row is deleted when it is switched off, and a lever moves on. The live charts and
    the swimlanes of the orders an entry touched show it as a marker (``record.py``).
    """

    class Action(models.TextChoices):
        LEVER = "lever", "lever pulled"
        FAULT_ON = "fault_on", "fault switched on"
        FAULT_OFF = "fault_off", "fault switched off"

    action = models.CharField(max_length=16, choices=Action.choices)
    label = models.CharField(max_length=200)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    by = models.CharField(max_length=150, blank=True)
    # The one order the entry names (a fault for one order); None when it is for every order.
    order_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    lever_change = models.OneToOneField(
        LeverChange, null=True, blank=True, on_delete=models.SET_NULL, related_name="entry"
    )
    fault_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "record entries"

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.label}"


class Rerun(models.Model):
    """A finished order placed again with one lever flipped for the new order only (the
    counterfactual re-run), and the fault that makes the flip bite, if any. The row is stored
    in the new order's own transaction, so every process that sees the order sees its levers."""

    order_id = models.BigIntegerField(unique=True)
    original_id = models.BigIntegerField(db_index=True)
    lever = models.CharField(max_length=16, choices=LeverChange.Lever.choices)
    # As in LeverChange: the service, or the event type a schema lever switches.
    service = models.CharField(max_length=20)
    value = models.CharField(max_length=20)
    event_type = models.CharField(max_length=40, blank=True)
    fault = models.CharField(max_length=16, blank=True)
    fault_service = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.label()

    def flip(self) -> str:
        """The lever as it was flipped for this order: "idempotency off at payment"."""
        return LeverChange(
            lever=self.lever, service=self.service, value=self.value, event_type=self.event_type
        ).label()

    def fault_label(self) -> str:
        if not self.fault:
            return ""
        what = {Fault.Kind.DUPLICATE: "a duplicate delivery", Fault.Kind.CRASH: "a worker crash"}
        return f"{what.get(self.fault, self.fault)} at {self.fault_service}"

    def flip_and_fault(self) -> str:
        """The flip and the fault that makes it bite: "idempotency off at payment, with a
        duplicate delivery at payment"."""
        fault = f", with {self.fault_label()}" if self.fault else ""
        return f"{self.flip()}{fault}"

    def label(self) -> str:
        return f"order {self.order_id}: re-run of order {self.original_id}, {self.flip_and_fault()}"
