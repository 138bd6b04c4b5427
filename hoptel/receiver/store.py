"""The thread-safe store behind the receiver: what arrived, and waiting for it to arrive.

The transports' handler threads append; test threads read snapshots or block on one ``threading.Condition``
until enough has arrived. Nothing polls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hoptel.receiver.metrics import ReceivedMetric
from hoptel.receiver.model import Protocol, ReceivedLog, ReceivedSpan

__all__ = ["MetricListener", "SpanListener", "TelemetryStore"]

_log = logging.getLogger(__name__)

SpanListener = Callable[[Sequence[ReceivedSpan]], None]
"""Called with each accepted batch of spans, on the receiving thread, after they are stored."""

MetricListener = Callable[[Sequence[ReceivedMetric]], None]
"""Called with each accepted batch of metric data points, on the receiving thread, after they are stored."""

_T = TypeVar("_T", ReceivedSpan, ReceivedLog, ReceivedMetric)

_SHOWN_IN_TIMEOUT = 20  # how many arrived items a TimeoutError message lists


def _describe_span(span: ReceivedSpan) -> str:
    return (
        f"{span.service_name or '?'} {span.name!r} [{span.kind}] {span.status_code} "
        f"trace={span.trace_id} span={span.span_id} parent={span.parent_span_id} via {span.protocol}"
    )


def _describe_log(record: ReceivedLog) -> str:
    return (
        f"{record.service_name or '?'} {record.severity_text or record.severity_number} {record.body!r} "
        f"trace={record.trace_id} via {record.protocol}"
    )


def _describe_metric(point: ReceivedMetric) -> str:
    return (
        f"{point.service_name or '?'} {point.name} {point.kind} {point.temporality} count={point.count} "
        f"{point.attributes} via {point.protocol}"
    )


_SHOWN_AS: dict[type[Any], tuple[str, Callable[[Any], str]]] = {
    ReceivedSpan: ("spans", _describe_span),
    ReceivedLog: ("log records", _describe_log),
    ReceivedMetric: ("metric points", _describe_metric),
}
"""Per kind, its plural and how one item reads in a TimeoutError message."""


def _timeout_message(kind: type[_T], items: list[_T], n: int, n_matched: int, timeout: float) -> str:
    what, describe = _SHOWN_AS[kind]
    lines = [f"expected at least {n} matching {what} within {timeout} s; {n_matched} matched of {len(items)} received:"]
    lines.extend(f"  - {describe(item)}" for item in items[-_SHOWN_IN_TIMEOUT:])
    if len(items) > _SHOWN_IN_TIMEOUT:
        lines.append(f"  ... and {len(items) - _SHOWN_IN_TIMEOUT} earlier")
    if not items:
        lines.append("  (nothing arrived)")
    return "\n".join(lines)


class TelemetryStore:
    """Spans, logs, metric points and request counts, safe to share between threads.

    Args:
        on_spans: Optional listener for each stored batch of spans; an exception it raises is logged and
            does not fail the export.
        on_metrics: Likewise for each stored batch of metric data points.
    """

    def __init__(self, on_spans: SpanListener | None = None, on_metrics: MetricListener | None = None) -> None:
        self._cond = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._logs: list[ReceivedLog] = []
        self._metrics: list[ReceivedMetric] = []
        self._requests: dict[Protocol, int] = {"grpc": 0, "http": 0}
        self._received: dict[type[Any], list[Any]] = {
            ReceivedSpan: self._spans,
            ReceivedLog: self._logs,
            ReceivedMetric: self._metrics,
        }  # what wait() reads per kind: the same lists, which clear() empties in place
        self._generation = 0  # bumped by clear(), so a waiter rescans from the start
        self._on_spans = on_spans
        self._on_metrics = on_metrics

    # -- writers (transport threads) -------------------------------------------------------------------

    def count_request(self, protocol: Protocol) -> None:
        """Count one export request that reached an OTLP endpoint, whatever its outcome."""
        with self._cond:
            self._requests[protocol] += 1
            self._cond.notify_all()

    def add_spans(self, spans: Sequence[ReceivedSpan]) -> None:
        """Store a batch of spans, wake the waiters, then call the listener."""
        self._add(self._spans, spans, self._on_spans, "span")

    def add_logs(self, logs: Sequence[ReceivedLog]) -> None:
        """Store a batch of log records and wake the waiters."""
        self._add(self._logs, logs, None, "log")

    def add_metrics(self, points: Sequence[ReceivedMetric]) -> None:
        """Store a batch of metric data points, wake the waiters, then call the listener."""
        self._add(self._metrics, points, self._on_metrics, "metric")

    def _add(
        self, items: list[_T], batch: Sequence[_T], listener: Callable[[Sequence[_T]], None] | None, what: str
    ) -> None:
        if not batch:
            return
        with self._cond:
            items.extend(batch)
            self._cond.notify_all()
        if listener is not None:
            try:
                listener(batch)
            except Exception:
                _log.exception("hoptel.receiver: %s listener failed", what)

    # -- readers ---------------------------------------------------------------------------------------

    def spans(self) -> list[ReceivedSpan]:
        """Return a snapshot of every span received, in arrival order."""
        with self._cond:
            return list(self._spans)

    def logs(self) -> list[ReceivedLog]:
        """Return a snapshot of every log record received, in arrival order."""
        with self._cond:
            return list(self._logs)

    def metrics(self) -> list[ReceivedMetric]:
        """Return a snapshot of every metric data point received, in arrival order."""
        with self._cond:
            return list(self._metrics)

    def traces(self) -> dict[str, list[ReceivedSpan]]:
        """Return the spans grouped by trace id, traces in order of first arrival."""
        grouped: dict[str, list[ReceivedSpan]] = {}
        for span in self.spans():
            grouped.setdefault(span.trace_id, []).append(span)
        return grouped

    def request_count(self) -> dict[Protocol, int]:
        """Return a snapshot of the export requests received per protocol: ``{"grpc": n, "http": m}``."""
        with self._cond:
            return dict(self._requests)

    def clear(self) -> None:
        """Forget every span, log record, metric point and request count."""
        with self._cond:
            self._spans.clear()
            self._logs.clear()
            self._metrics.clear()
            self._requests = {"grpc": 0, "http": 0}
            self._generation += 1
            self._cond.notify_all()

    # -- waiting ---------------------------------------------------------------------------------------

    def wait(self, kind: type[_T], n: int, timeout: float, predicate: Callable[[_T], bool] | None = None) -> list[_T]:
        """Block until at least ``n`` items of ``kind`` matching ``predicate`` have arrived.

        Args:
            kind: ``ReceivedSpan``, ``ReceivedLog`` or ``ReceivedMetric``.
            n: How many matching items to wait for.
            timeout: Seconds to wait at most.
            predicate: Which items count (all when ``None``); called under the store's lock, keep it cheap.

        Returns:
            Every matching item received so far (at least ``n``), in arrival order.

        Raises:
            TimeoutError: Too few matching items arrived in time; the message lists what did arrive.
        """
        items: list[_T] = self._received[kind]
        deadline = time.monotonic() + timeout
        matched: list[_T] = []
        scanned = 0
        with self._cond:
            generation = self._generation
            while True:
                if generation != self._generation:  # clear() ran while we waited: start over
                    generation, matched, scanned = self._generation, [], 0
                for item in items[scanned:]:
                    if predicate is None or predicate(item):
                        matched.append(item)
                scanned = len(items)
                if len(matched) >= n:
                    return matched
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(_timeout_message(kind, items, n, len(matched), timeout))
                self._cond.wait(remaining)

    def wait_for_trace(self, trace_id: str, n_spans: int, timeout: float) -> list[ReceivedSpan]:
        """``wait`` for ``n_spans`` spans of the trace ``trace_id`` (32 hex digits, in either case)."""
        trace_id = trace_id.lower()
        return self.wait(ReceivedSpan, n_spans, timeout, lambda span: span.trace_id == trace_id)

    def wait_for_requests(self, n: int, protocol: Protocol | None = None, timeout: float = 10.0) -> int:
        """Block until at least ``n`` export requests have arrived (over ``protocol``, or over both).

        Returns:
            The request count reached.

        Raises:
            TimeoutError: Too few requests arrived in time.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                count = self._requests[protocol] if protocol else sum(self._requests.values())
                if count >= n:
                    return count
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected at least {n} export requests ({protocol or 'any protocol'}) within "
                        f"{timeout} s, got {count}: {self._requests}"
                    )
                self._cond.wait(remaining)
