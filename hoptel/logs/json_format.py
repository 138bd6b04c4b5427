"""One JSON object per line, correlated with traces.

Keys, in this order: ``timestamp`` (RFC 3339, microseconds, UTC, ``Z``), ``level`` (Python's level name, e.g.
``"WARNING"``), ``logger``, ``message``, ``service.name``, then ``trace_id`` (32 hex) and ``span_id`` (16 hex)
when a valid span was current on the thread that logged, ``exception`` (the formatted ``exc_info``) and
``stack`` (``stack_info``) when present, and last the record's extra fields (``extra={...}``). An extra field
named like one of the keys above is written as ``extra.<name>`` instead of overwriting it.

Values that JSON cannot represent (objects, NaN, tuples as dict keys, cycles) are written as their ``repr()``,
so every line is valid JSON; output is ASCII (non-ASCII characters are escaped), so any stream encoding works.
"""

from __future__ import annotations

import json
from typing import Any

from hoptel.logs.fields import Entry, Rfc3339Clock, exception_text, extra_fields, message_of

__all__ = ["JSONFormatter"]

_CORE_KEYS = frozenset(
    {"timestamp", "level", "logger", "message", "service.name", "trace_id", "span_id", "exception", "stack"}
)


class JSONFormatter:
    """Formats an :data:`~hoptel.logs.fields.Entry` as one JSON line (without the trailing newline).

    Args:
        service_name: Written as ``service.name`` on every line.
    """

    __slots__ = ("_clock", "_encode", "service_name")

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        self._clock = Rfc3339Clock()
        self._encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=repr).encode

    def __call__(self, entry: Entry) -> str:
        """Format one entry."""
        record, _, span_context = entry
        document: dict[str, Any] = {
            "timestamp": self._clock(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message_of(entry),
            "service.name": self.service_name,
        }
        if span_context.is_valid:
            document["trace_id"] = format(span_context.trace_id, "032x")
            document["span_id"] = format(span_context.span_id, "016x")
        text = exception_text(record)
        if text:
            document["exception"] = text
        if record.stack_info:
            document["stack"] = record.stack_info
        extras = extra_fields(record)
        if not extras:
            return self._encode(document)
        for name, value in extras.items():
            document[f"extra.{name}" if name in _CORE_KEYS else name] = value
        try:
            return self._encode(document)
        except (TypeError, ValueError, RecursionError):
            for name in extras:
                key = f"extra.{name}" if name in _CORE_KEYS else name
                document[key] = self._jsonable(document[key])
            return self._encode(document)

    def _jsonable(self, value: object) -> object:
        """``value`` if it encodes on its own, else its ``repr()`` (or a placeholder when even that fails)."""
        try:
            self._encode(value)
        except Exception:  # TypeError, ValueError (NaN, cycles), RecursionError, a failing __repr__
            try:
                return repr(value)
            except Exception:
                return f"<unrepresentable {type(value).__name__}>"
        return value
