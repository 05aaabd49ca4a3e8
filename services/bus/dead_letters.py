"""Events a service could not handle: stored with the error, and sent again on request."""

from __future__ import annotations

import json
import traceback
from typing import Any

from services.bus.models import DeadLetter


def dead_letter_store(
    *, service: str, envelope: Any, error: BaseException, attempts: int
) -> DeadLetter:
    data = _storable(envelope)
    order_id = data.get("orderId")
    return DeadLetter.objects.create(
        service=service,
        event_id=_uuid_or_nil(data.get("eventId")),
        event_type=storable_text(str(data.get("type", "?")))[:40],
        order_id=order_id if _is_bigint(order_id) else None,
        envelope=data,
        error=error_text(error),
        attempts=attempts,
    )


def storable_text(text: str) -> str:
    """PostgreSQL's text and jsonb refuse the NUL character: show it rather than fail to store."""
    return text.replace("\x00", "\\x00")


def error_text(error: BaseException) -> str:
    return storable_text("".join(traceback.format_exception_only(type(error), error)).strip())[
        :4000
    ]


def _storable(envelope: Any) -> dict[str, Any]:
    """The message as a JSON object the database takes. A dead letter must store whatever came:
    Celery's JSON carries Infinity, NaN and NUL characters, which a JSON column refuses."""
    if isinstance(envelope, dict):
        try:
            if "\\u0000" not in json.dumps(envelope, allow_nan=False):
                return envelope
        except (TypeError, ValueError):
            pass
    # repr() writes a NUL character as the four characters \x00.
    return {"raw": repr(envelope)[:20_000]}


def _is_bigint(value: Any) -> bool:
    return type(value) is int and 0 < value < 2**63


def _uuid_or_nil(value: Any) -> str:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return str(uuid.UUID(int=0))
