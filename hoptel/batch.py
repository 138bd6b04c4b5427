"""The one OTLP batch pipeline: a bounded span queue drained by one worker thread.

Compared with the SDK's BatchSpanProcessor this one counts what it loses (``hoptel_spans_dropped_total`` when the
queue is full, ``hoptel_export_failures_total`` when an export fails), exposes its queue length, and restarts its
worker in a forked child. The request thread does a flag check, a length check and a deque append — nothing else.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["BatchSpanProcessor", "PipelineCounters"]

_log = logging.getLogger("hoptel.export")

# The SDK sets this key while exporting so that instrumented clients (the OTLP gRPC channel, HTTP libraries)
# do not trace the export itself; hoptel's interceptors honour it too. It is private to opentelemetry-api.
_SUPPRESS_KEY = otel_context._SUPPRESS_INSTRUMENTATION_KEY


class PipelineCounters:
    """Callbacks the processor reports to; each takes a count. Defaults do nothing."""

    def __init__(
        self,
        dropped: Callable[[float], None] | None = None,
        export_failed: Callable[[float], None] | None = None,
        exported: Callable[[float], None] | None = None,
    ) -> None:
        self.dropped = dropped or _ignore
        self.export_failed = export_failed or _ignore
        self.exported = exported or _ignore


def _ignore(_: float) -> None:
    """Counter callback that records nothing."""


class BatchSpanProcessor(SpanProcessor):
    """Queues sampled spans and exports them in batches from a background thread.

    Args:
        exporter: where batches go.
        max_queue_size: spans held at most; more are dropped and counted.
        max_export_batch_size: spans per export call.
        schedule_delay_s: longest wait before a partial batch is exported.
        counters: where drops, failures and successes are reported.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int = 2048,
        max_export_batch_size: int = 512,
        schedule_delay_s: float = 5.0,
        counters: PipelineCounters | None = None,
    ) -> None:
        self._exporter = exporter
        self._max_queue_size = max_queue_size
        self._batch_size = max_export_batch_size
        self._delay_s = schedule_delay_s
        self._counters = counters or PipelineCounters()
        self._shutdown = False
        self._start_worker()
        self_ref = weakref.ref(self)

        def _after_fork() -> None:
            processor = self_ref()
            if processor is not None:
                processor._start_worker()

        os.register_at_fork(after_in_child=_after_fork)

    def _start_worker(self) -> None:
        """(Re)create the queue state and the worker thread; also runs in a forked child."""
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wakeup = threading.Event()
        self._export_lock = threading.Lock()
        self._flush_requests: list[threading.Event] = []
        self._stopping = False
        self._worker = threading.Thread(target=self._run, name="hoptel-span-export", daemon=True)
        self._worker.start()

    @property
    def queue_length(self) -> int:
        """Spans waiting for export."""
        return len(self._queue)

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a finished sampled span, or count it as dropped when the queue is full."""
        if self._shutdown:
            return
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self._counters.dropped(1.0)
            return
        queue.append(span)
        if len(queue) == self._batch_size:
            self._wakeup.set()

    def _run(self) -> None:
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
        try:
            while not self._stopping:
                self._wakeup.wait(self._delay_s)
                self._wakeup.clear()
                self._export_all()
                self._answer_flushes()
            self._export_all()
            self._answer_flushes()
        finally:
            otel_context.detach(token)

    def _answer_flushes(self) -> None:
        requests, self._flush_requests = self._flush_requests, []
        for done in requests:
            done.set()

    def _export_all(self) -> None:
        queue = self._queue
        while queue:
            batch: list[ReadableSpan] = []
            while queue and len(batch) < self._batch_size:
                batch.append(queue.popleft())
            self._export(batch)

    def _export(self, batch: list[ReadableSpan]) -> None:
        with self._export_lock:
            try:
                result = self._exporter.export(batch)
            except Exception:
                _log.warning("span export raised; %d spans lost", len(batch), exc_info=True)
                result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._counters.exported(float(len(batch)))
        else:
            self._counters.export_failed(1.0)
            self._counters.dropped(float(len(batch)))

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued so far; False if that did not finish in time."""
        if self._shutdown or not self._worker.is_alive():
            return not self._queue
        done = threading.Event()
        self._flush_requests.append(done)
        self._wakeup.set()
        return done.wait(timeout_millis / 1000.0)

    def shutdown(self, timeout_s: float = 30.0) -> bool:  # type: ignore[override]  # SDK's takes no timeout
        """Drain the queue within ``timeout_s``, then shut the exporter down; idempotent.

        Returns:
            True if every queued span was handed to the exporter in time.
        """
        if self._shutdown:
            return True
        deadline = time.monotonic() + timeout_s
        self._stopping = True
        self._wakeup.set()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        drained = not self._worker.is_alive()
        self._shutdown = True
        # Interrupts an exporter still retrying, so shutdown() returns within its timeout.
        self._exporter.shutdown()
        self._worker.join(max(0.0, min(1.0, deadline - time.monotonic())))
        return drained
