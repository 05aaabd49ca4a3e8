"""The record of how each event reached each subscribing service (``Delivery``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from services.bus.dead_letters import error_text, storable_text
from services.bus.models import Delivery
from services.bus.rows import row_upsert
from services.bus.schemas import Envelope

_FAULTS_MAX = Delivery._meta.get_field("faults").max_length or 400


def _faults_text(applied: list[str]) -> str:
    return "; ".join(applied)[:_FAULTS_MAX]


def delivery_handled(
    *,
    envelope: Envelope,
    service: str,
    attempt: int,
    received_at: datetime,
    wait_ms: float,
    handler_ms: float,
    faults: list[str],
) -> None:
    """Record a handled delivery; called inside the handler's transaction, so it is one insert
    (an upsert, for an event whose earlier attempts failed)."""
    row = Delivery(
        event_id=envelope.eventId,
        service=service,
        seq=envelope.seq,
        event_type=envelope.type,
        order_id=envelope.orderId,
        status=Delivery.Status.HANDLED,
        attempts=attempt,
        faults=_faults_text(faults),
        received_at=received_at,
        settled_at=timezone.now(),
        wait_ms=wait_ms,
        handler_ms=handler_ms,
    )
    row_upsert(
        row,
        unique=["event_id", "service"],
        update=["status", "attempts", "faults", "settled_at", "wait_ms", "handler_ms"],
    )


def delivery_duplicate(
    *, envelope: Envelope, service: str, received_at: datetime, faults: list[str]
) -> None:
    """Count a delivery the inbox recognised and skipped."""
    changes: dict[str, Any] = {"duplicates": F("duplicates") + 1}
    if faults:
        changes["faults"] = _faults_text(faults)
    if Delivery.objects.filter(event_id=envelope.eventId, service=service).update(**changes):
        return
    # Handled before deliveries were recorded: start its record with this duplicate.
    _create_or_update(
        envelope_data=envelope.model_dump(mode="json"),
        service=service,
        create={
            "status": Delivery.Status.HANDLED,
            "duplicates": 1,
            "faults": _faults_text(faults),
            "received_at": received_at,
        },
        update=changes,
    )


def delivery_failed(
    *, envelope: dict[str, Any], service: str, error: BaseException, attempt: int, dead: bool
) -> None:
    """Record a failed attempt: retried (``dead=False``) or given up (``dead=True``)."""
    if not _is_identifiable(envelope):
        return  # nothing to file it under; the dead letter keeps the raw message
    text = error_text(error)
    status = Delivery.Status.DEAD if dead else Delivery.Status.RETRYING
    now = timezone.now()
    changes: dict[str, Any] = {
        "status": status,
        "attempts": attempt,
        "error": text,
        "settled_at": now,
    }
    if not dead:
        changes["retries"] = F("retries") + 1
    _create_or_update(
        envelope_data=envelope,
        service=service,
        create={**changes, "retries": 0 if dead else 1, "received_at": now},
        update=changes,
    )


def _create_or_update(
    *,
    envelope_data: dict[str, Any],
    service: str,
    create: dict[str, Any],
    update: dict[str, Any],
) -> None:
    key = {"event_id": envelope_data["eventId"], "service": service}
    if Delivery.objects.filter(**key).update(**update):
        return
    try:
        with transaction.atomic():
            now = timezone.now()
            fields = {"received_at": now, "settled_at": now, **create}
            Delivery.objects.create(
                **key,
                seq=envelope_data["seq"],
                event_type=storable_text(str(envelope_data["type"]))[:40],
                order_id=envelope_data["orderId"],
                **fields,
            )
    except IntegrityError:
        Delivery.objects.filter(**key).update(**update)


def _is_identifiable(envelope: Any) -> bool:
    if not isinstance(envelope, dict):
        return False
    try:
        uuid.UUID(str(envelope.get("eventId")))
    except ValueError:
        return False
    return (
        _is_bigint(envelope.get("seq"))
        and _is_bigint(envelope.get("orderId"))
        and isinstance(envelope.get("type"), str)
    )


def _is_bigint(value: Any) -> bool:
    # What a bigint column holds: a bigger number (JSON carries any) would crash the record.
    return type(value) is int and 0 < value < 2**63
