"""``LogPipeline``: directives as logger levels, one queue handler on the root logger, one writer thread.

``LogPipeline.start()`` does, in this order (nothing is changed if an argument is invalid):

1. parses the directives and applies them as logger levels (root gets the default level);
2. sets ``GRPC_VERBOSITY=ERROR`` unless ``GRPC_VERBOSITY``/``GRPC_TRACE`` is set (see ``grpc_verbosity``);
3. starts the worker thread and installs **one** :class:`~hoptel.logs.queue_handler.BoundedQueueHandler` on the
   root logger, writing JSON or text lines to ``stream`` (``sys.stdout``) and, with an OTLP exporter, sending
   the same records through an OTel batch log processor;
4. takes the root logger's console handlers out (see below), so output is not written twice;
5. routes the loggers of uvicorn and gunicorn into it (see :mod:`~hoptel.logs.server_loggers`);
6. when it writes to ``sys.stdout``, puts a :class:`~hoptel.logs.line_guard.LineGuard` in its place, so that its
   lines and the application's ``print()`` output never cut into each other;
7. starts watching for a later logging reconfiguration (see :mod:`~hoptel.logs.reconfigure_watch`).

A reconfiguration after ``start()`` (``uvicorn.run()`` applying its logging config, a ``dictConfig``,
``fileConfig`` or ``basicConfig(force=True)`` by the application) is handled before the next record is:

- in every case below but the last, the per-logger levels of the directives (``uvicorn.access=warning``) are
  applied again, since the new configuration may have set its own (the root logger's level stays as it set it;
  the record that triggers the reaction already passed its logger's level check);
- hoptel's handler still on the root logger: the server loggers are adopted again (uvicorn's new handlers are
  moved aside);
- hoptel's handler taken off the root logger, and the new configuration put no console handler there (records
  would be lost, or reach only a file): it is put back, and the server loggers are adopted again;
- hoptel's handler taken off, and the new configuration put its own console handler on the root logger: the
  application chose its console output, so hoptel steps aside and says so once on the real stderr (records no
  longer reach hoptel's lines nor OTLP export).

Existing handlers: a ``logging.StreamHandler`` on the root logger that writes to ``sys.stdout``/``sys.stderr``
(what ``logging.basicConfig()`` installs) would print every record a second time, so it is removed while the
pipeline runs and put back by ``shutdown()``. File handlers, socket/syslog/queue handlers, pytest's capture
handler and handlers on other loggers are kept. ``keep_handlers=True`` keeps them all.

Only one pipeline is live at a time: starting another one shuts the previous one down first.

``shutdown()`` stops watching, drains the queue (within its timeout), flushes and shuts down OTLP log export, removes
the handler, puts back the handlers it removed or moved aside (root and server loggers), the ``propagate`` values
and logger levels it changed and the real ``sys.stdout``, and removes ``GRPC_VERBOSITY`` if it set it.
It also runs at interpreter exit if it was not called.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from hoptel.config import DEFAULT_LOG_DIRECTIVES
from hoptel.logs.directives import Directives, LoggerLevels, parse_directives
from hoptel.logs.grpc_verbosity import GrpcVerbosity, quiet_grpc_core, undo_grpc_verbosity
from hoptel.logs.json_format import JSONFormatter
from hoptel.logs.line_guard import LineGuard
from hoptel.logs.queue_handler import BoundedQueueHandler, DropCounter
from hoptel.logs.reconfigure_watch import ReconfigureWatch
from hoptel.logs.server_loggers import SERVER_LOGGERS, ServerLoggers
from hoptel.logs.text_format import TextFormatter
from hoptel.logs.writer import Formatter, StreamWriter

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

    from hoptel.logs.otlp import OTLPLogBridge
    from hoptel.otel_internals import LogRecordExporter

__all__ = ["LOG_FORMATS", "LogPipeline", "console_handlers"]

LOG_FORMATS = ("json", "text")
"""The values ``HOPTEL_LOG_FORMAT`` accepts."""

_live_lock = threading.Lock()
_live: LogPipeline | None = None


def console_handlers(logger: logging.Logger, extra_stream: TextIO | None = None) -> list[logging.Handler]:
    """The handlers of ``logger`` that write to the console: the ones a log pipeline replaces.

    A handler counts when it is a ``logging.StreamHandler`` but not a ``FileHandler`` and its stream is
    ``sys.stdout`` (or the stream a :class:`~hoptel.logs.line_guard.LineGuard` there wraps), ``sys.stderr``
    (current or original) or ``extra_stream``.

    Args:
        logger: Usually the root logger.
        extra_stream: The pipeline's own output stream, when it is not stdout.
    """
    guarded = sys.stdout.stream if isinstance(sys.stdout, LineGuard) else None
    candidates = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__, extra_stream, guarded)
    streams = [s for s in candidates if s is not None]
    return [
        handler
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
        and any(handler.stream is stream for stream in streams)
    ]


@dataclass(frozen=True)
class _Parts:
    """What ``LogPipeline.start()`` made and set up, for the pipeline to use and ``shutdown()`` to take down."""

    log_format: str
    handler: BoundedQueueHandler
    levels: LoggerLevels
    otlp: OTLPLogBridge | None
    grpc_verbosity: GrpcVerbosity
    stream: TextIO | None
    servers: ServerLoggers
    watch: ReconfigureWatch | None
    guard: LineGuard | None


class LogPipeline:
    """The running log pipeline. Create it with :meth:`start`."""

    def __init__(self, parts: _Parts, directives: Directives, displaced: list[logging.Handler]) -> None:
        self._parts = parts
        self._directives = directives  # replaced by set_filter()
        self._displaced = displaced  # emptied by a reconfiguration that decides the root logger's handlers
        self._stepped_aside = False
        self._lock = threading.Lock()
        self._closed = False
        self._result = False

    @classmethod
    def start(
        cls,
        directives: str = DEFAULT_LOG_DIRECTIVES,
        log_format: str = "json",
        service_name: str = "unknown_service",
        resource: Resource | None = None,
        otlp_exporter: LogRecordExporter | None = None,
        dropped_counter: DropCounter | None = None,
        queue_size: int = 10_000,
        stream: TextIO | None = None,
        *,
        keep_handlers: bool = False,
        grpc_verbosity: GrpcVerbosity | None = None,
    ) -> LogPipeline:
        """Start the pipeline and install its handler on the root logger.

        Args:
            directives: ``HOPTEL_LOG``, e.g. ``"info,grpc=warning"``.
            log_format: ``"json"`` or ``"text"`` (``HOPTEL_LOG_FORMAT``).
            service_name: Written as ``service.name`` on each line.
            resource: The OTel resource for exported log records (default: just ``service.name``).
            otlp_exporter: An OTLP log exporter; ``None`` writes to the stream only.
            dropped_counter: Incremented per record dropped because the queue was full.
            queue_size: How many records may wait for the writer (``HOPTEL_LOG_QUEUE_SIZE``).
            stream: Where lines go; ``None`` means ``sys.stdout`` as it is when each batch is written, and puts a
                :class:`~hoptel.logs.line_guard.LineGuard` in its place.
            keep_handlers: Keep the root logger's console handlers (output is then duplicated), and leave the server
                loggers' handlers alone.
            grpc_verbosity: What an earlier :func:`~hoptel.logs.grpc_verbosity.quiet_grpc_core` call did, for a
                caller that had to run it before importing grpc (``shutdown()`` undoes it); default: run it now.

        Returns:
            The running pipeline.

        Raises:
            ValueError: a bad directive, format or queue size; the message names the variable.
        """
        parsed = parse_directives(directives, "HOPTEL_LOG")
        formatter: Formatter
        if log_format == "json":
            formatter = JSONFormatter(service_name)
        elif log_format == "text":
            formatter = TextFormatter(service_name)
        else:
            raise ValueError(f"HOPTEL_LOG_FORMAT={log_format!r}: expected one of {', '.join(LOG_FORMATS)}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"HOPTEL_LOG_QUEUE_SIZE={queue_size!r}: expected an integer >= 1")

        global _live
        with _live_lock:
            previous, _live = _live, None
        if previous is not None:
            previous.shutdown()

        otlp: OTLPLogBridge | None = None
        if otlp_exporter is not None:
            from opentelemetry.sdk.resources import Resource

            from hoptel.logs.otlp import OTLPLogBridge

            otlp = OTLPLogBridge(otlp_exporter, resource or Resource.create({"service.name": service_name}))
        if grpc_verbosity is None:
            grpc_verbosity = quiet_grpc_core()
        pipeline: LogPipeline | None = None

        def after_reconfigure() -> None:
            if pipeline is not None:
                pipeline._after_reconfigure()

        watch = ReconfigureWatch(after_reconfigure)
        handler = BoundedQueueHandler(
            StreamWriter(formatter, stream, otlp), queue_size, dropped_counter, on_close=watch.mark
        )
        root = logging.getLogger()
        displaced = [] if keep_handlers else console_handlers(root, stream)
        levels = LoggerLevels()
        levels.apply(parsed)
        servers = ServerLoggers(
            lambda logger: console_handlers(logger, stream), () if keep_handlers else SERVER_LOGGERS
        )
        root.addHandler(handler)
        for old in displaced:
            root.removeHandler(old)
        servers.adopt()
        guard = LineGuard.install() if stream is None else None
        parts = _Parts(log_format, handler, levels, otlp, grpc_verbosity, stream, servers, watch, guard)
        pipeline = cls(parts, parsed, displaced)
        watch.start()
        with _live_lock:
            _live = pipeline
        atexit.register(pipeline._at_exit)
        return pipeline

    @property
    def directives(self) -> Directives:
        """The directives in force."""
        return self._directives

    @property
    def log_format(self) -> str:
        """``"json"`` or ``"text"``."""
        return self._parts.log_format

    @property
    def handler(self) -> BoundedQueueHandler:
        """The handler installed on the root logger."""
        return self._parts.handler

    @property
    def dropped(self) -> int:
        """How many records were dropped because the queue was full."""
        return self._parts.handler.dropped

    @property
    def displaced_handlers(self) -> tuple[logging.Handler, ...]:
        """The root logger's console handlers taken out while the pipeline runs."""
        return tuple(self._displaced)

    @property
    def grpc_verbosity(self) -> GrpcVerbosity:
        """Whether ``GRPC_VERBOSITY`` was set, and whether it could still take effect."""
        return self._parts.grpc_verbosity

    @property
    def closed(self) -> bool:
        """Whether ``shutdown()`` was called."""
        return self._closed

    @property
    def server_loggers(self) -> ServerLoggers:
        """The uvicorn and gunicorn loggers routed into the pipeline."""
        return self._parts.servers

    @property
    def stepped_aside(self) -> bool:
        """Whether a later logging configuration took the root logger's console over (see the module docstring)."""
        return self._stepped_aside

    def _after_reconfigure(self) -> None:
        """React to a logging reconfiguration; runs before the first record created after it is handled."""
        if self._closed or self._stepped_aside:
            return
        root = logging.getLogger()
        if self._parts.handler not in root.handlers:
            self._displaced = []  # the new configuration decides the root logger's handlers now
            theirs = console_handlers(root, self._parts.stream)
            if theirs:
                self._step_aside(theirs)
                return
            root.addHandler(self._parts.handler)
        self._parts.servers.adopt()
        with self._lock:  # the per-logger directives win over levels the new configuration set (not the default)
            if not self._closed:
                self._parts.levels.apply(Directives(root.level, self._directives.loggers))

    def _step_aside(self, theirs: list[logging.Handler]) -> None:
        self._stepped_aside = True
        if self._parts.watch is not None:
            self._parts.watch.stop()
        stderr = sys.__stderr__
        if stderr is None:
            return
        names = ", ".join(repr(handler) for handler in theirs)
        try:
            stderr.write(
                "hoptel: WARNING: logging was reconfigured after hoptel.setup() (dictConfig, fileConfig or "
                f"basicConfig(force=True)) and the root logger now writes to the console through {names}; "
                "hoptel's log handler was removed and stays out: records are no longer written as hoptel's "
                f"{self._parts.log_format} lines nor exported over OTLP. To keep hoptel's, configure logging before "
                "hoptel.setup() (hoptel then takes the console over) or leave console handlers off the root logger.\n"
            )
            stderr.flush()
        except (OSError, ValueError):
            pass

    def set_filter(self, directives: str) -> Directives:
        """Replace the directives at run time, e.g. ``"debug,grpc=info"``.

        Args:
            directives: A new directive list (same syntax as ``HOPTEL_LOG``).

        Returns:
            The parsed directives now in force.

        Raises:
            ValueError: a bad directive; nothing is changed.
            RuntimeError: the pipeline was shut down.
        """
        parsed = parse_directives(directives, "HOPTEL_LOG")
        with self._lock:
            if self._closed:
                raise RuntimeError("the log pipeline was shut down")
            self._parts.levels.apply(parsed)
            self._directives = parsed
        return parsed

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything queued so far, and export what OTLP holds; wait at most ``timeout`` seconds.

        Returns:
            ``True`` when all of it finished in time.
        """
        deadline = time.monotonic() + timeout
        written = self._parts.handler.drain(timeout)
        if self._parts.otlp is None:
            return written
        return self._parts.otlp.force_flush(max(0.0, deadline - time.monotonic())) and written

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Drain the queue, flush OTLP logs, and undo every change ``start()`` made. Idempotent.

        Args:
            timeout: Seconds to wait, at most, for the queue and the OTLP export together.

        Returns:
            ``True`` when the queue was drained and OTLP export finished within ``timeout`` (also on later calls).
        """
        global _live
        with self._lock:
            if self._closed:
                return self._result
            self._closed = True
        deadline = time.monotonic() + timeout
        if self._parts.watch is not None:
            self._parts.watch.stop()
        root = logging.getLogger()
        for old in self._displaced:
            if old not in root.handlers:
                root.addHandler(old)
        root.removeHandler(self._parts.handler)
        self._parts.servers.restore()
        self._parts.levels.restore()
        drained = self._parts.handler.stop(timeout)
        if self._parts.guard is not None:
            self._parts.guard.uninstall()
        exported = True
        if self._parts.otlp is not None:
            exported = self._parts.otlp.shutdown(max(0.0, deadline - time.monotonic()))
        self._parts.handler.close()
        undo_grpc_verbosity(self._parts.grpc_verbosity)
        atexit.unregister(self._at_exit)
        with _live_lock:
            if _live is self:
                _live = None
        self._result = drained and exported
        return self._result

    def _at_exit(self) -> None:
        self.shutdown(5.0)
