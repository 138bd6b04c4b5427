"""Exporter outages, quiet and visible: each failed attempt counted at once, one line when it starts, one when it ends.

An :class:`OutageTracker` belongs to one exporter (one signal: ``traces``, ``logs``). The exporter reports the outcome
of every attempt it makes, retries included (see :mod:`hoptel.export_attempts`):

* a failed attempt adds 1 to ``hoptel_export_attempt_failures_total{signal}`` at once, and the first one of an
  outage writes one WARNING (logger ``hoptel.export``) naming the signal, the endpoint and the reason;
* the first successful attempt after that writes one INFO: how long it lasted, how many attempts failed and how
  many items were dropped meanwhile; :meth:`OutageTracker.close` writes that line at shutdown if it still lasts.

OpenTelemetry's exporters write a WARNING per retry and an ERROR per failed export, and, when hoptel's log handler
is already gone at shutdown, plain ``Shutdown in progress, aborting retry.`` lines on stderr. Inside a hoptel export
call those lines say nothing the tracker's two lines do not, so :class:`AttemptLinesFilter` (on the exporters'
loggers) leaves them out; their other lines, and all lines of exporters hoptel did not build, pass.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from hoptel.metrics import CounterChild
from hoptel.otel_internals import OTLP_EXPORTER_LOGGERS

__all__ = ["EXPORTER_LOGGERS", "AttemptLinesFilter", "OutageTracker", "install_attempt_lines_filter"]

_log = logging.getLogger("hoptel.export")
_T = TypeVar("_T")

EXPORTER_LOGGERS = OTLP_EXPORTER_LOGGERS
"""The loggers OpenTelemetry's OTLP exporters (and their retrying HTTP client) write to."""

# How OpenTelemetry's attempt lines begin: a retry, a failed export, a retry cut short by shutdown, a batch after it.
_ATTEMPT_LINES = ("Transient error", "Failed to export", "Shutdown in progress", "Exporter already shutdown")
_REASON_CHARS = 300

_exporting: contextvars.ContextVar[OutageTracker | None] = contextvars.ContextVar("hoptel_exporting", default=None)


class OutageTracker:
    """Follows one exporter's attempts; counts failures and logs the start and the end of each outage.

    Args:
        signal: ``traces`` or ``logs``: the ``signal`` label and the word in the lines.
        endpoint: Where the exporter sends (named in the lines).
        attempt_failures: The counter series for this signal, incremented per failed attempt.
        dropped_total: The running count of this signal's lost items (e.g. ``hoptel_spans_dropped_total``); the
            INFO line reports how much it grew during the outage. Default: the items of exports that failed.
        unit: What the items are called in the lines (``spans``, ``log records``).
    """

    def __init__(
        self,
        signal: str,
        endpoint: str,
        attempt_failures: CounterChild,
        dropped_total: Callable[[], float] | None = None,
        *,
        unit: str = "items",
    ) -> None:
        self.signal = signal
        self.endpoint = endpoint
        self.unit = unit
        self._attempt_failures = attempt_failures
        self._lost = 0.0
        self._dropped_total = dropped_total if dropped_total is not None else self._lost_so_far
        self._lock = threading.Lock()
        self._since: float | None = None  # monotonic time of the outage's first failed attempt
        self._failed = 0
        self._dropped_before = 0.0
        self._closed = False

    @property
    def failing(self) -> bool:
        """True from a failed attempt until the next successful one."""
        return self._since is not None

    def _lost_so_far(self) -> float:
        return self._lost

    def attempt_failed(self, reason: str) -> None:
        """Count a failed attempt; the first of an outage writes the WARNING."""
        self._attempt_failures.inc()
        with self._lock:
            self._failed += 1
            if self._since is not None or self._closed:
                return
            self._since = time.monotonic()
            self._dropped_before = self._dropped_total()
        reason = reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"
        _log.warning(
            "OTLP %s export to %s is failing (%s); retrying without further lines until it works again",
            self.signal,
            self.endpoint,
            reason,
            extra={"otlp.signal": self.signal, "otlp.endpoint": self.endpoint, "reason": reason},
        )

    def attempt_succeeded(self) -> None:
        """An attempt went through: the end of an outage writes the INFO line."""
        if self._since is not None:
            self._end("works again")

    def batch_lost(self, items: int) -> None:
        """An export call failed for good (after its retries) with ``items`` in it."""
        with self._lock:
            self._lost += items

    def close(self) -> None:
        """At shutdown: an outage still going on gets its closing line now; later attempts are only counted."""
        self._closed = True
        if self._since is not None:
            self._end("was still failing at shutdown")

    def _end(self, how: str) -> None:
        with self._lock:
            since = self._since
            if since is None:
                return
            self._since = None
            failed, self._failed = self._failed, 0
            dropped = max(0.0, self._dropped_total() - self._dropped_before)
        seconds = round(time.monotonic() - since, 1)
        _log.info(
            "OTLP %s export to %s %s after %.1f s: %d attempts failed, %d %s dropped meanwhile",
            self.signal,
            self.endpoint,
            how,
            seconds,
            failed,
            dropped,
            self.unit,
            extra={
                "otlp.signal": self.signal,
                "otlp.endpoint": self.endpoint,
                "outage_s": seconds,
                "failed_attempts": failed,
                "dropped": int(dropped),
            },
        )

    def run(self, export: Callable[[], _T]) -> _T:
        """Run one export call as this tracker's: OpenTelemetry's attempt lines inside it are left out."""
        token = _exporting.set(self)
        try:
            return export()
        finally:
            _exporting.reset(token)

    def __repr__(self) -> str:
        state = "failing" if self.failing else "ok"
        return f"<OutageTracker {self.signal} {self.endpoint} {state}>"


class AttemptLinesFilter(logging.Filter):
    """Leaves out OpenTelemetry's per-attempt lines logged inside a hoptel export call (the tracker reports them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a retry/failure/shutdown line of a hoptel export; True for everything else."""
        if _exporting.get() is None:
            return True
        message = record.msg
        return not (isinstance(message, str) and message.startswith(_ATTEMPT_LINES))


_filter = AttemptLinesFilter()
_filter_lock = threading.Lock()


def install_attempt_lines_filter() -> None:
    """Put the filter on the exporters' loggers; idempotent.

    It stays for the life of the process: an export thread may still log after ``shutdown()`` returned, and the
    filter acts only inside hoptel's own export calls.
    """
    with _filter_lock:
        for name in EXPORTER_LOGGERS:
            logger = logging.getLogger(name)
            if _filter not in logger.filters:
                logger.addFilter(_filter)
