"""A bounded, never-blocking ``logging.Handler`` and the one worker thread that drains it.

On the calling thread ``emit()`` does three things: a size check, capturing the current span context (and
the message, only when its arguments are mutable, see :func:`~hoptel.logs.fields.capture_message`), and a
``SimpleQueue.put`` (C code, never blocks). When the queue already holds ``maxsize`` entries the record is
dropped and counted instead. The handler also skips ``logging.Handler``'s per-record I/O lock, which it does
not need.

The worker thread (a daemon named ``hoptel-log-writer``) takes everything queued at once, in batches of up to
``batch_size`` entries, and hands each batch to the sink: a plain callable ``(list[Entry]) -> None`` that formats
and writes. ``drain()`` (and ``flush()``) waits until everything queued before it was handed to the sink;
``stop()`` does the same and ends the worker.

``close()`` from someone else than the owner: ``logging.config.dictConfig``/``fileConfig`` close every handler
they find, and ``basicConfig(force=True)`` the root logger's, before installing their own. A handler built with
``on_close`` keeps its worker running then and calls ``on_close`` (the log pipeline uses it to notice the
reconfiguration); the owner ends it with ``stop()`` first. Without ``on_close``, ``close()`` stops the worker.

After ``os.fork()`` (gunicorn's pre-fork workers) the child starts its own queue and worker; records queued in
the parent before the fork are written by the parent only.

The size check and the put are not one atomic step, so with many threads logging at once the queue can
overshoot ``maxsize`` by at most one entry per thread; it never grows without bound.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Protocol

from opentelemetry.trace import get_current_span

from hoptel.background import on_fork, start_daemon
from hoptel.logs.fields import Entry, capture_message

__all__ = ["BoundedQueueHandler", "DropCounter", "Sink"]

Sink = Callable[[list[Entry]], None]
"""What the worker hands each batch to."""


class DropCounter(Protocol):
    """Anything with ``inc()``: a hoptel ``CounterChild`` or a prometheus_client counter (child)."""

    def inc(self, amount: float = 1.0, /) -> None:
        """Add ``amount``."""


class _Marker:
    """Queued by flush()/stop(): set once the worker has handled everything queued before it."""

    __slots__ = ("done", "stop")

    def __init__(self, stop: bool) -> None:
        self.done = threading.Event()
        self.stop = stop


class BoundedQueueHandler(logging.Handler):
    """Enqueues records for one worker thread; drops and counts them when the queue is full.

    The worker thread starts in the constructor.

    Args:
        sink: Called on the worker thread with each batch of entries, oldest first.
        maxsize: How many entries may wait in the queue (>= 1).
        dropped_counter: Incremented once per dropped record (e.g. ``hoptel_log_records_dropped_total``).
        batch_size: The most entries handed to the sink in one call.
        on_close: Called (on the closing thread, with ``logging``'s module lock possibly held: keep it short) when
            ``close()`` is called before ``stop()``; the worker then keeps running. ``None``: ``close()`` stops it.
    """

    def __init__(
        self,
        sink: Sink,
        maxsize: int,
        dropped_counter: DropCounter | None = None,
        *,
        batch_size: int = 512,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        super().__init__(logging.NOTSET)
        self._sink = sink
        self._maxsize = maxsize
        self._batch_size = batch_size
        self._counter = dropped_counter
        self._on_close = on_close
        self._dropped = 0
        self._closed = False
        self._reported = False
        self._start_worker()
        on_fork(self, after_in_child=BoundedQueueHandler._after_fork_in_child)

    def _start_worker(self) -> None:
        self._queue: queue.SimpleQueue[Entry | _Marker] = queue.SimpleQueue()
        self._qsize = self._queue.qsize
        self._put = self._queue.put
        self._drop_lock = threading.Lock()
        self._thread = start_daemon(self._run, "hoptel-log-writer")

    def _after_fork_in_child(self) -> None:
        """A forked child has no worker thread: start a fresh queue and worker (the parent writes its own)."""
        if not self._closed:
            self._start_worker()

    @property
    def dropped(self) -> int:
        """How many records were dropped because the queue was full."""
        return self._dropped

    @property
    def queued(self) -> int:
        """How many entries are waiting (approximate while other threads log)."""
        return self._qsize()

    @property
    def worker(self) -> threading.Thread:
        """The worker thread."""
        return self._thread

    def handle(self, record: logging.LogRecord) -> bool:
        """Apply the handler's filters, then ``emit()``; without ``logging.Handler``'s lock (the queue is enough)."""
        if self.filters:
            result = self.filter(record)
            if not result:
                return False
            if isinstance(result, logging.LogRecord):  # Python 3.12+: a filter may return a replacement
                record = result
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Enqueue the record with the caller's span context, or drop and count it when the queue is full."""
        if self._qsize() >= self._maxsize:
            self._drop()
            return
        self._put((record, capture_message(record), get_current_span().get_span_context()))

    def _drop(self) -> None:
        if self._closed:  # after stop(): the record is not lost to a full queue, it arrived too late
            return
        with self._drop_lock:
            self._dropped += 1
        if self._counter is not None:
            self._counter.inc(1.0)

    def flush(self) -> None:
        """Wait (up to 5 s) until every entry queued before this call has been handed to the sink."""
        self.drain(5.0)

    def drain(self, timeout: float | None = 5.0) -> bool:
        """Wait until every entry queued before this call has been handed to the sink.

        Args:
            timeout: Seconds to wait at most (``None``: no limit).

        Returns:
            ``True`` when done; ``False`` on timeout, after ``stop()``, or when called from the worker itself.
        """
        if self._closed or threading.current_thread() is self._thread or not self._thread.is_alive():
            return False
        marker = _Marker(stop=False)
        self._put(marker)
        return marker.done.wait(timeout)

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Hand everything queued to the sink, then end the worker thread. Idempotent.

        Records emitted after ``stop()`` are ignored (not counted as dropped).

        Args:
            timeout: Seconds to wait at most (``None``: no limit).

        Returns:
            ``True`` when the queue was drained and the worker ended within ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._closed:
            self._closed = True
            self._maxsize = 0  # every later emit() takes the drop path, which ignores it
            self._put(_Marker(stop=True))
        if threading.current_thread() is self._thread:
            return False
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def close(self) -> None:
        """Close the handler; before ``stop()``, call ``on_close`` and keep working, or stop (draining up to 5 s)."""
        if not self._closed:
            if self._on_close is not None:
                self._on_close()
                return
            self.stop(5.0)
        super().close()

    def _run(self) -> None:
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        batch_size = self._batch_size
        while True:
            item = get()
            batch: list[Entry] = []
            markers: list[_Marker] = []
            while True:
                if isinstance(item, _Marker):
                    markers.append(item)
                else:
                    batch.append(item)
                    if len(batch) >= batch_size:
                        break
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self._sink(batch)
                except Exception:
                    self._report()
                del batch  # release the records before waiting for the next ones
            stop = False
            for marker in markers:
                marker.done.set()
                stop = stop or marker.stop
            if stop:
                return

    def _report(self) -> None:
        """Print the sink's failure to the real stderr, once: logging it could fail the same way again."""
        if self._reported:
            return
        self._reported = True
        stream = sys.__stderr__
        if stream is not None:
            stream.write("hoptel: the log writer failed; later failures are not reported:\n")
            traceback.print_exc(file=stream)
