"""``OTLPReceiver``: OTLP/gRPC and OTLP/HTTP on loopback, for development and tests.

>>> with OTLPReceiver() as rx:                      # doctest: +SKIP
...     os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = rx.grpc_endpoint
...     ...                                        # run code that exports spans
...     (span,) = rx.wait_for_spans(1, predicate=lambda s: s.name == "GET /cart")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple

import grpc

from hoptel.receiver.behaviour import Behaviour, FailureStatus
from hoptel.receiver.grpc_service import start_grpc_server
from hoptel.receiver.http_service import OTLPHTTPServer, start_http_server
from hoptel.receiver.metrics import ReceivedMetric
from hoptel.receiver.model import Protocol, ReceivedLog, ReceivedSpan
from hoptel.receiver.store import MetricListener, SpanListener, TelemetryStore

__all__ = ["OTLPReceiver"]

_HTTP_THREAD_JOIN_S = 5.0


class _Running(NamedTuple):
    """The servers of one start(); stop() tears them down together."""

    grpc_server: grpc.Server
    http_server: OTLPHTTPServer
    http_thread: threading.Thread


class OTLPReceiver:
    """An OTLP receiver that keeps what it receives in memory and lets a test wait for it.

    Ports are chosen at the first ``start()`` (0 = a free one) and kept: after ``stop()``, ``start()`` binds
    the same ports again, and what was received before is kept until ``clear()``. All methods are
    thread-safe.

    Args:
        host: The address both servers bind.
        grpc_port: The OTLP/gRPC port; 0 picks a free one.
        http_port: The OTLP/HTTP port; 0 picks a free one.
        on_spans: Optional listener called with each batch of spans stored, on the receiving thread.
        on_metrics: Optional listener called with each batch of metric data points stored, likewise.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        http_port: int = 0,
        *,
        on_spans: SpanListener | None = None,
        on_metrics: MetricListener | None = None,
    ) -> None:
        self._host = host
        self._grpc_port = grpc_port
        self._http_port = http_port
        self._store = TelemetryStore(on_spans, on_metrics)
        self._behaviour = Behaviour()
        self._lifecycle = threading.Lock()
        self._running: _Running | None = None
        self._stopping = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> OTLPReceiver:
        """Bind both servers and start serving; a no-op when already running.

        Returns:
            The receiver itself.

        Raises:
            OSError: A port could not be bound (e.g. another process holds it).
        """
        with self._lifecycle:
            if self._running is not None:
                return self
            stopping = threading.Event()
            grpc_server, grpc_port = start_grpc_server(
                self._host, self._grpc_port, self._store, self._behaviour, stopping
            )
            try:
                http_server, http_thread = start_http_server(
                    self._host, self._http_port, self._store, self._behaviour, stopping
                )
            except BaseException:
                grpc_server.stop(None).wait()
                raise
            self._grpc_port, self._http_port = grpc_port, http_server.server_port
            self._stopping = stopping
            self._running = _Running(grpc_server, http_server, http_thread)
        return self

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving and release both ports; a no-op when not running.

        Requests still waiting out ``delay_s`` are answered as a vanished collector would: gRPC
        ``UNAVAILABLE``, HTTP connection closed without an answer.

        Args:
            grace: Seconds in-flight gRPC calls get to finish before they are cancelled.
        """
        with self._lifecycle:
            running, self._running = self._running, None
            if running is None:
                return
            self._stopping.set()
            running.http_server.shutdown()
            running.http_server.server_close()
            running.http_thread.join(_HTTP_THREAD_JOIN_S)
            running.grpc_server.stop(grace).wait()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"OTLPReceiver(host={self._host!r}, grpc_port={self._grpc_port}, http_port={self._http_port}, {state})"

    @property
    def running(self) -> bool:
        """Whether the servers are up."""
        return self._running is not None

    # -- addresses -------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address both servers bind."""
        return self._host

    @property
    def grpc_port(self) -> int:
        """The OTLP/gRPC port (known once started).

        Raises:
            RuntimeError: The port is ephemeral and the receiver was never started.
        """
        return self._known(self._grpc_port)

    @property
    def http_port(self) -> int:
        """The OTLP/HTTP port (known once started).

        Raises:
            RuntimeError: The port is ephemeral and the receiver was never started.
        """
        return self._known(self._http_port)

    @property
    def grpc_endpoint(self) -> str:
        """``http://HOST:PORT``, for ``OTEL_EXPORTER_OTLP_ENDPOINT`` with the ``grpc`` protocol."""
        return f"http://{self._netloc(self.grpc_port)}"

    @property
    def http_endpoint(self) -> str:
        """``http://HOST:PORT``, the base URL for ``http/protobuf`` (exporters append ``/v1/traces``)."""
        return f"http://{self._netloc(self.http_port)}"

    def _netloc(self, port: int) -> str:
        return f"[{self._host}]:{port}" if ":" in self._host else f"{self._host}:{port}"

    @staticmethod
    def _known(port: int) -> int:
        if port == 0:
            raise RuntimeError("the OTLPReceiver has not been started yet, so its port is not chosen")
        return port

    # -- failure modes ---------------------------------------------------------------------------------

    def fail_with(
        self, status: FailureStatus | None, retry_after_s: float | None = None, times: int | None = None
    ) -> None:
        """Refuse export requests: gRPC ``UNAVAILABLE``/HTTP 503 or ``RESOURCE_EXHAUSTED``/HTTP 429.

        A refusal carries ``retry_after_s`` when given (gRPC ``RetryInfo`` trailer, HTTP ``Retry-After``
        rounded up to whole seconds). Refused requests are counted in ``request_count`` but their data is
        dropped.

        Args:
            status: ``"unavailable"``, ``"resource_exhausted"``, or ``None`` to answer normally again.
            retry_after_s: The retry delay to advertise, or ``None``.
            times: Refuse only the next ``times`` requests; ``None`` refuses until changed.

        Raises:
            ValueError: An unknown status or an out-of-range number.
        """
        self._behaviour.fail_with(status, retry_after_s, times)

    @property
    def delay_s(self) -> float:
        """Seconds each export request waits before it is handled (0 by default); settable."""
        return self._behaviour.delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        self._behaviour.delay_s = value

    # -- what arrived ----------------------------------------------------------------------------------

    @property
    def request_count(self) -> dict[Protocol, int]:
        """Export requests received per protocol, refused ones included: ``{"grpc": n, "http": m}``."""
        return self._store.request_count()

    def spans(self) -> list[ReceivedSpan]:
        """Return a snapshot of every span received, in arrival order."""
        return self._store.spans()

    def logs(self) -> list[ReceivedLog]:
        """Return a snapshot of every log record received, in arrival order."""
        return self._store.logs()

    def metrics(self) -> list[ReceivedMetric]:
        """Return a snapshot of every metric data point received (one per point), in arrival order.

        ``hoptel.receiver.summarize_metrics`` / ``format_metrics`` merge them into series with p50/p99.
        """
        return self._store.metrics()

    def traces(self) -> dict[str, list[ReceivedSpan]]:
        """Return the spans grouped by trace id (32 hex digits), traces in order of first arrival."""
        return self._store.traces()

    def clear(self) -> None:
        """Forget every span, log record, metric point and request count (the failure mode is kept)."""
        self._store.clear()

    def wait_for_spans(
        self, n: int, timeout: float = 10.0, predicate: Callable[[ReceivedSpan], bool] | None = None
    ) -> list[ReceivedSpan]:
        """Block until at least ``n`` spans matching ``predicate`` have arrived.

        Args:
            n: How many matching spans to wait for.
            timeout: Seconds to wait at most.
            predicate: Which spans count (all when ``None``); called under the store's lock, keep it cheap.

        Returns:
            Every matching span so far (at least ``n``), in arrival order.

        Raises:
            TimeoutError: Too few arrived in time; the message lists what did arrive.
        """
        return self._store.wait(ReceivedSpan, n, timeout, predicate)

    def wait_for_trace(self, trace_id: str, n_spans: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Like ``wait_for_spans``, for ``n_spans`` spans of the trace ``trace_id`` (32 hex digits, either case)."""
        return self._store.wait_for_trace(trace_id, n_spans, timeout)

    def wait_for_logs(
        self, n: int, timeout: float = 10.0, predicate: Callable[[ReceivedLog], bool] | None = None
    ) -> list[ReceivedLog]:
        """Like ``wait_for_spans``, for log records."""
        return self._store.wait(ReceivedLog, n, timeout, predicate)

    def wait_for_metrics(
        self, n: int, timeout: float = 10.0, predicate: Callable[[ReceivedMetric], bool] | None = None
    ) -> list[ReceivedMetric]:
        """Like ``wait_for_spans``, for metric data points (one per point, as ``metrics()`` returns them)."""
        return self._store.wait(ReceivedMetric, n, timeout, predicate)

    def wait_for_requests(self, n: int, protocol: Protocol | None = None, timeout: float = 10.0) -> int:
        """Block until at least ``n`` export requests have arrived over ``protocol`` (or over both).

        Returns:
            The count reached.

        Raises:
            TimeoutError: Too few arrived in time.
        """
        return self._store.wait_for_requests(n, protocol, timeout)
