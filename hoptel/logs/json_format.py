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
from json.encoder import encode_basestring_ascii
from typing import Any

from hoptel.logs.fields import Entry, Rfc3339Clock, exception_text, extra_fields, message_of

__all__ = ["JSONFormatter"]

_escape = encode_basestring_ascii  # str -> its JSON string literal, ASCII only (C implementation)

_CORE_KEYS = frozenset(
    {"timestamp", "level", "logger", "message", "service.name", "trace_id", "span_id", "exception", "stack"}
)


class JSONFormatter:
    """Formats an :data:`~hoptel.logs.fields.Entry` as one JSON line (without the trailing newline).

    The fixed keys are assembled as text around C-escaped strings (several times faster than ``json`` on a
    dict); only extra fields go through a ``json.JSONEncoder``.

    Args:
        service_name: Written as ``service.name`` on every line.
    """

    __slots__ = ("_clock", "_encode", "_service", "service_name")

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        self._service = _escape(service_name)
        self._clock = Rfc3339Clock()
        self._encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=repr).encode

    def __call__(self, entry: Entry) -> str:
        """Format one entry."""
        record, _, span_context = entry
        line = (
            f'{{"timestamp":"{self._clock(record.created)}","level":{_escape(record.levelname)},'
            f'"logger":{_escape(record.name)},"message":{_escape(message_of(entry))},"service.name":{self._service}'
        )
        if span_context.is_valid:
            line = f'{line},"trace_id":"{span_context.trace_id:032x}","span_id":"{span_context.span_id:016x}"'
        text = exception_text(record)
        if text:
            line = f'{line},"exception":{_escape(text)}'
        if record.stack_info:
            line = f'{line},"stack":{_escape(record.stack_info)}'
        extras = extra_fields(record)
        if not extras:
            return line + "}"
        return f"{line},{self._encode_extras(extras)[1:]}"

    def _encode_extras(self, extras: dict[str, Any]) -> str:
        """The extras as a JSON object; a colliding name becomes ``extra.<name>``, a bad value its ``repr()``."""
        fields = {f"extra.{name}" if name in _CORE_KEYS else str(name): value for name, value in extras.items()}
        try:
            return self._encode(fields)
        except (TypeError, ValueError, RecursionError):
            return self._encode({name: self._jsonable(value) for name, value in fields.items()})

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
