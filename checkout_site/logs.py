"""Log lines that say which order and trace they belong to: plain text, or JSON lines."""

from __future__ import annotations

import json
import logging

from services.bus.tracing import trace_id

# What a delivery's log line carries besides its message (services/bus/consumer.py).
_FIELDS = ("service", "event_type", "seq", "order_id", "outcome")


class TraceFilter(logging.Filter):
    """Adds the current trace id to every record (``trace_id``, and `` trace=…`` for text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = trace_id()
        record.trace = f" trace={record.trace_id}" if record.trace_id else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (LOG_FORMAT=json), for a log shipper to index by field."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "at": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if getattr(record, "trace_id", ""):
            line["trace_id"] = record.trace_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
