"""What a queued log record carries, and the fields every output (JSON, text, OTLP) reads from it.

The calling thread enqueues an :data:`Entry`: the ``logging.LogRecord`` itself, the message when it had to be
rendered early (see :func:`capture_message`), and the span context current on the calling thread. Everything
else (timestamps, extra fields, exception text) is derived from it on the worker thread by the helpers here.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any, TypeAlias

from opentelemetry.trace import SpanContext

__all__ = [
    "STANDARD_ATTRIBUTES",
    "Entry",
    "Rfc3339Clock",
    "capture_message",
    "exception_text",
    "extra_fields",
    "message_of",
    "render_message",
]

Entry: TypeAlias = tuple[logging.LogRecord, str | None, SpanContext]
"""``(record, message rendered on the calling thread or None, span context of the calling thread)``."""

STANDARD_ATTRIBUTES: frozenset[str] = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",  # Python 3.12+
    # Set by opentelemetry-instrumentation-logging; hoptel writes its own trace_id/span_id/service.name.
    "otelSpanID",
    "otelTraceID",
    "otelTraceSampled",
    "otelServiceName",
    # uvicorn's copy of the message with ANSI colour codes, for its own console formatter only.
    "color_message",
}
"""Attributes every ``LogRecord`` has (and a few that only one console formatter reads); anything else on a record
is an extra field (``extra={...}``)."""

_PLAIN_RECORD_SIZE = len(vars(logging.makeLogRecord({})))
_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes})


def capture_message(record: logging.LogRecord) -> str | None:
    """Render the message on the calling thread only when the worker could see it differently later.

    A ``%``-format with only immutable arguments (str, int, float, bool, None, bytes) is left to the worker;
    anything else (a dict, a list, an object whose ``__str__`` reads mutable state, a non-string message) is
    rendered now, because the caller may change it right after the call returns.

    Args:
        record: The record being enqueued.

    Returns:
        The rendered message, or ``None`` when rendering can wait for the worker.
    """
    args = record.args
    if not args:
        return None if type(record.msg) is str else render_message(record)
    if type(args) is tuple and type(record.msg) is str:
        for arg in args:
            if type(arg) not in _IMMUTABLE:
                break
        else:
            return None
    return render_message(record)


def render_message(record: logging.LogRecord) -> str:
    """``record.getMessage()``, or a description of the failure when ``msg % args`` raises."""
    try:
        return record.getMessage()
    except Exception as error:  # a bad format string must neither reach the caller nor stop the worker
        return f"{record.msg!r} % {record.args!r} (could not format: {type(error).__name__}: {error})"


def message_of(entry: Entry) -> str:
    """The record's message, rendered (``msg % args``) unless the calling thread already did."""
    message = entry[1]
    return render_message(entry[0]) if message is None else message


def exception_text(record: logging.LogRecord) -> str | None:
    """The formatted traceback of ``exc_info`` (reusing ``exc_text`` when a handler already made it)."""
    if record.exc_text:
        return record.exc_text
    exc_info = record.exc_info
    if not exc_info or exc_info[0] is None:
        return None
    return "".join(traceback.format_exception(exc_info[0], exc_info[1], exc_info[2])).rstrip("\n")


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's attributes that are not standard ``LogRecord`` attributes, in the order they were set."""
    attributes = record.__dict__
    if len(attributes) <= _PLAIN_RECORD_SIZE:  # the common case: nothing was added to a plain record
        return {}
    names = attributes.keys() - STANDARD_ATTRIBUTES
    if not names:
        return {}
    return {name: value for name, value in attributes.items() if name in names}


class Rfc3339Clock:
    """Formats ``LogRecord.created`` as RFC 3339 UTC with microseconds: ``2024-05-01T12:00:00.123456Z``.

    The date-and-seconds prefix is cached, so consecutive records in the same second cost one ``divmod`` and one
    f-string.

    >>> Rfc3339Clock()(0.5)
    '1970-01-01T00:00:00.500000Z'
    """

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: tuple[int, str] = (-1, "")

    def __call__(self, created: float) -> str:
        """Format a Unix timestamp in seconds."""
        seconds, micros = divmod(round(created * 1_000_000), 1_000_000)
        cached_seconds, prefix = self._cache
        if seconds != cached_seconds:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self._cache = (seconds, prefix)  # one assignment: readers see a consistent pair
        return f"{prefix}.{micros:06d}Z"
