"""OTLP log export: the same records, through an OTel ``LoggerProvider`` and a ``BatchLogRecordProcessor``.

The bridge runs on hoptel's log worker thread, after a batch was written to stdout. Each record becomes an OTel
log record with:

* the span context captured on the thread that logged (so ``trace_id``/``span_id`` match the span that was
  current there, although the worker has no current span of its own);
* ``body`` = the rendered message, ``severity_number`` mapped from the level, ``severity_text`` as OTel spells
  it (``WARN`` for ``WARNING``, ``FATAL`` for ``CRITICAL``), the record's creation time as ``timestamp``;
* attributes ``code.file.path``, ``code.function.name``, ``code.line.number``, ``thread.name``,
  ``code.stacktrace`` (``stack_info``) when present, the extra fields (a value OTLP cannot carry is sent as its
  ``repr()``), and ``exception.type``/``.message``/``.stacktrace`` from ``exc_info``.

The instrumentation scope is the logger name. Records from ``opentelemetry.*`` loggers (e.g. the exporter's own
"failed to export" warning) are written to stdout but not exported, so a failing exporter cannot feed itself.
The ``BatchLogRecordProcessor`` reads ``OTEL_BLRP_*`` for its schedule and sizes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import NonRecordingSpan, set_span_in_context

from hoptel.logs.fields import Entry, extra_fields, message_of
from hoptel.otel_internals import SeverityNumber

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

    from hoptel.otel_internals import LogRecordExporter, OTelLogger

__all__ = ["OTLPLogBridge", "severity"]

_INT64 = (-(2**63), 2**63 - 1)
_PRIMITIVES = (str, bool, int, float)
_SEVERITY_BASES = (
    (50, SeverityNumber.FATAL, "FATAL"),
    (40, SeverityNumber.ERROR, "ERROR"),
    (30, SeverityNumber.WARN, "WARN"),
    (20, SeverityNumber.INFO, "INFO"),
    (10, SeverityNumber.DEBUG, "DEBUG"),
    (1, SeverityNumber.TRACE, "TRACE"),
)


def severity(levelno: int, levelname: str) -> tuple[SeverityNumber, str]:
    """The OTel severity number and text for a Python level.

    The standard levels map to the base number of their range (``WARNING`` → ``WARN`` = 13); levels in between
    step up within the range (``WARNING + 2`` → ``WARN3``). A custom level keeps its own name as the text.

    >>> severity(30, "WARNING")
    (<SeverityNumber.WARN: 13>, 'WARN')
    >>> severity(25, "NOTICE")
    (<SeverityNumber.INFO4: 12>, 'NOTICE')

    Args:
        levelno: ``LogRecord.levelno``.
        levelname: ``LogRecord.levelname``.
    """
    if levelno <= 0:
        return SeverityNumber.UNSPECIFIED, levelname
    for base, number, text in _SEVERITY_BASES:
        if levelno >= base:
            step = min(levelno - base, 3) if base > 1 else 0
            name = text if levelno == base or base == 1 else levelname
            return SeverityNumber(number.value + step), name
    return SeverityNumber.UNSPECIFIED, levelname  # pragma: no cover - levelno >= 1 always matches


def _attribute(value: object) -> Any:
    """``value`` when OTLP can carry it as an attribute, else its ``repr()``."""
    if isinstance(value, _PRIMITIVES):
        if isinstance(value, int) and not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]:
            return str(value)
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        kinds = {type(item) for item in value}
        if len(kinds) <= 1 and kinds <= {str, bool, int, float}:
            return tuple(value)
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


class OTLPLogBridge:
    """Sends queued entries to an OTLP log exporter through a batch processor.

    Args:
        exporter: A ready-made OTLP log exporter (gRPC or HTTP/protobuf).
        resource: The resource every record carries (service.name and the rest).
    """

    def __init__(self, exporter: LogRecordExporter, resource: Resource) -> None:
        from hoptel.otel_internals import BatchLogRecordProcessor, LoggerProvider

        self._provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self._provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
        self._loggers: dict[str, OTelLogger] = {}

    def __call__(self, batch: list[Entry]) -> None:
        """Emit each entry of a batch (worker thread only)."""
        for entry in batch:
            record = entry[0]
            name = record.name
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                continue
            logger = self._loggers.get(name)
            if logger is None:
                logger = self._loggers[name] = self._provider.get_logger(name)
            self._emit(logger, entry)

    def _emit(self, logger: OTelLogger, entry: Entry) -> None:
        record, _, span_context = entry
        number, text = severity(record.levelno, record.levelname)
        attributes: dict[str, Any] = {
            "code.file.path": record.pathname,
            "code.function.name": record.funcName,
            "code.line.number": record.lineno,
            "thread.name": record.threadName or "",
        }
        if record.stack_info:
            attributes["code.stacktrace"] = record.stack_info
        for key, value in extra_fields(record).items():
            attributes[key] = _attribute(value)
        exception = record.exc_info[1] if record.exc_info else None
        logger.emit(
            timestamp=int(record.created * 1e9),
            observed_timestamp=time.time_ns(),
            context=set_span_in_context(NonRecordingSpan(span_context)) if span_context.is_valid else None,
            severity_number=number,
            severity_text=text,
            body=message_of(entry),
            attributes=attributes,
            exception=exception,
        )

    def force_flush(self, timeout: float) -> bool:
        """Export what the batch processor holds, waiting at most ``timeout`` seconds."""
        return _bounded(lambda: self._provider.force_flush(int(timeout * 1000)), timeout)

    def shutdown(self, timeout: float) -> bool:
        """Export what is left and shut the exporter down, waiting at most ``timeout`` seconds.

        The SDK's own shutdown waits up to 30 s for an unreachable collector; past ``timeout`` it is left to
        finish on a daemon thread.
        """
        return _bounded(self._provider.shutdown, timeout)


def _bounded(work: Any, timeout: float) -> bool:
    """Run ``work()`` on a daemon thread; ``True`` if it finished within ``timeout`` seconds."""
    thread = threading.Thread(target=work, name="hoptel-otlp-logs-shutdown", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # CPython 3.12 starts no new thread once the interpreter is finalizing (atexit): run it here
        work()
        return True
    thread.join(max(0.0, timeout))
    return not thread.is_alive()
