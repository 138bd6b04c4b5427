"""The one OTLP batch pipeline: a bounded span queue drained by one worker thread.

Compared with the SDK's BatchSpanProcessor this one counts what it loses (``hoptel_spans_dropped_total`` when the
queue is full, when their export fails and when they end after ``shutdown()``; ``hoptel_export_failures_total`` per
failed export), exposes its queue length, and restarts its worker in a forked child. A flush or a shutdown exports
what was queued when it was asked for, so it ends in bounded time under steady load. The request thread does a flag
check, a length check and a deque append — nothing else.

Around ``fork()`` the processor keeps its exporter idle (an export in flight is allowed to finish first, for at most
``FORK_WAIT_S``), because gRPC cannot be used in a child forked in the middle of a call; the child starts with an
empty queue and a new worker.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hoptel.background import on_fork, start_daemon
from hoptel.otel_internals import SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY

__all__ = ["FORK_WAIT_S", "BatchSpanProcessor", "PipelineCounters"]

_log = logging.getLogger("hoptel.export")

# The SDK sets this key while exporting so that instrumented clients (the OTLP gRPC channel, HTTP libraries)
# do not trace the export itself; hoptel's interceptors honour it too (see hoptel.otel_internals).

FORK_WAIT_S = 5.0
"""The longest ``fork()`` waits for an export in flight to finish (see ``_hold_exports_for_fork``)."""


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
        on_fork(
            self,
            before=BatchSpanProcessor._hold_exports_for_fork,
            after_in_parent=BatchSpanProcessor._resume_exports_after_fork,
            after_in_child=BatchSpanProcessor._start_worker,
        )

    def _start_worker(self) -> None:
        """(Re)create the queue state and the worker thread; also runs in a forked child, unless shut down.

        A forked child starts with an empty queue: the spans queued at the fork are the parent's to export.
        """
        if self._shutdown:
            return
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wakeup = threading.Event()
        self._export_lock = threading.Lock()
        self._fork_holder: int | None = None  # the thread that holds _export_lock across its fork()
        self._flush_lock = threading.Lock()
        self._flush_requests: list[threading.Event] = []
        self._stopping = False
        self._worker = start_daemon(self._run, "hoptel-span-export")

    @property
    def queue_length(self) -> int:
        """Spans waiting for export."""
        return len(self._queue)

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue a finished sampled span, or count it as dropped when the queue is full or shut down.

        The length check and the append are not one atomic step, so threads ending spans at the same moment may
        each add one past ``max_queue_size``: the queue is bounded by ``max_queue_size`` plus the number of threads.
        """
        if self._shutdown:
            self._counters.dropped(1.0)  # ended after shutdown(): it will never be exported
            return
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self._counters.dropped(1.0)
            return
        queue.append(span)
        # ">=", not "==": two threads appending at once may step over the exact batch size.
        if len(queue) >= self._batch_size and not self._wakeup.is_set():
            self._wakeup.set()

    def _run(self) -> None:
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
        try:
            while True:
                if len(self._queue) < self._batch_size:  # a full batch goes out without waiting
                    self._wakeup.wait(self._delay_s)
                self._wakeup.clear()
                stopping = self._stopping
                with self._flush_lock:
                    flushes, self._flush_requests = self._flush_requests, []
                # Only what is queued now: under steady load the queue never empties, and a flush or a shutdown
                # must not chase spans that arrive while it drains.
                self._export_queued(len(self._queue))
                for done in flushes:
                    done.set()
                if stopping:
                    return
        finally:
            otel_context.detach(token)

    def _export_queued(self, count: int) -> None:
        """Export the ``count`` oldest queued spans in batches."""
        queue = self._queue
        while count > 0 and queue:
            batch: list[ReadableSpan] = []
            while queue and len(batch) < self._batch_size and len(batch) < count:
                batch.append(queue.popleft())
            count -= len(batch)
            self._export(batch)

    def _export(self, batch: list[ReadableSpan]) -> None:
        with self._export_lock:
            try:
                result = self._exporter.export(batch)
            except Exception:
                if self._shutdown:  # shutdown() ran out of time and shut the exporter down under this export
                    _log.debug("span export interrupted by shutdown; %d spans lost", len(batch))
                else:
                    _log.warning("span export raised; %d spans lost", len(batch), exc_info=True)
                result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._counters.exported(float(len(batch)))
        else:
            self._counters.export_failed(1.0)
            self._counters.dropped(float(len(batch)))

    def _hold_exports_for_fork(self) -> None:
        """Before ``fork()``: let an export in flight finish (at most ``FORK_WAIT_S``) and start none until it is done.

        A child forked while another thread is inside a gRPC call cannot use gRPC: its export hangs or the child
        aborts in gRPC's poller (grpc/grpc#43055). Holding the export lock across the fork keeps hoptel's own
        exporter out of gRPC at that moment. The request path never takes this lock.
        """
        if not self._shutdown and self._export_lock.acquire(timeout=FORK_WAIT_S):
            self._fork_holder = threading.get_ident()

    def _resume_exports_after_fork(self) -> None:
        """After ``fork()``, in the parent: let the worker export again."""
        if self._fork_holder == threading.get_ident():
            self._fork_holder = None
            self._export_lock.release()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export every span queued before this call; False if that did not finish in time."""
        if self._shutdown or not self._worker.is_alive():
            return not self._queue
        done = threading.Event()
        with self._flush_lock:
            self._flush_requests.append(done)
        self._wakeup.set()
        return done.wait(timeout_millis / 1000.0)

    def shutdown(self, timeout_s: float = 30.0) -> bool:  # type: ignore[override]  # SDK's takes no timeout
        """Export every span queued so far within ``timeout_s``, then shut the exporter down; idempotent.

        From the moment it is called, newly ended spans are counted as dropped instead of queued, so the drain
        is finite even under load. Spans still queued when the time is up are counted as dropped.

        Returns:
            True if every queued span was handed to the exporter in time.
        """
        if self._shutdown:
            return True
        deadline = time.monotonic() + timeout_s
        self._shutdown = True
        self._stopping = True
        self._wakeup.set()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        drained = not self._worker.is_alive()
        # Interrupts an exporter still retrying, so shutdown() returns within its timeout. A worker that is still
        # running then fails its remaining batches at once, counting them as dropped.
        self._exporter.shutdown()
        self._worker.join(max(0.0, min(1.0, deadline - time.monotonic())))
        if not self._worker.is_alive():
            self._drop_leftovers()
        return drained

    def _drop_leftovers(self) -> None:
        """Count as dropped what a thread queued between its shutdown check and the worker's last drain."""
        queue = self._queue
        leftover = 0
        while queue:
            queue.popleft()
            leftover += 1
        if leftover:
            self._counters.dropped(float(leftover))
