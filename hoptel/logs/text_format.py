"""A readable one-line-per-record format for development.

``2024-05-01T12:00:00.123456Z WARNING  [orders] orders.db: slow query table=users ms=812 trace_id=… span_id=…``

Extra fields follow the message as ``key=value`` (a string value is quoted when it has spaces or quotes, other
values use ``repr()``); the trace ids come last. The traceback of ``exc_info`` and the ``stack_info`` text
follow on their own lines.
"""

from __future__ import annotations

from hoptel.logs.fields import Entry, Rfc3339Clock, exception_text, extra_fields, message_of

__all__ = ["TextFormatter"]

_NEEDS_QUOTES = frozenset(" \t\r\n\"'=")


def _value(value: object) -> str:
    if isinstance(value, str):
        if value and not any(c in _NEEDS_QUOTES for c in value):
            return value
        return repr(value)
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


class TextFormatter:
    """Formats an :data:`~hoptel.logs.fields.Entry` as readable text (multi-line only for tracebacks).

    Args:
        service_name: Shown in brackets after the level.
    """

    __slots__ = ("_clock", "_service", "service_name")

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        self._service = f"[{service_name}] " if service_name else ""
        self._clock = Rfc3339Clock()

    def __call__(self, entry: Entry) -> str:
        """Format one entry."""
        record, _, span_context = entry
        parts = [
            f"{self._clock(record.created)} {record.levelname:<8} {self._service}{record.name}: {message_of(entry)}"
        ]
        parts.extend(f"{name}={_value(value)}" for name, value in extra_fields(record).items())
        if span_context.is_valid:
            parts.append(f"trace_id={span_context.trace_id:032x} span_id={span_context.span_id:016x}")
        line = " ".join(parts)
        text = exception_text(record)
        if text:
            line = f"{line}\n{text}"
        if record.stack_info:
            line = f"{line}\n{record.stack_info}"
        return line
