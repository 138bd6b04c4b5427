"""OpenTelemetry's OTLP exporters, observed attempt by attempt for an :class:`~hoptel.export_outage.OutageTracker`.

OpenTelemetry's exporters retry inside ``export()``: the gRPC ones call their stub's ``Export`` up to six times,
the HTTP ones their client's transport. hoptel puts a thin observer around that one object, so that the outcome of
every attempt reaches the tracker while OpenTelemetry keeps its retry rules, backoff and TLS:

* gRPC: the stub, the base exporter's ``_client``; ``_initialize_channel_and_stub`` (which makes a new stub after
  ``UNAVAILABLE``) is extended to observe the new one too;
* HTTP: the transport, ``_client._transport``, which the base exporter's retrying client sends each attempt
  through.

Both are private attributes of the base classes (read and replaced through ``hoptel.otel_internals``); when one
is missing (another OpenTelemetry version), ``track_outages`` returns False and the exporter works as before, seen
only through whole failed exports.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from hoptel.export_outage import OutageTracker, install_attempt_lines_filter
from hoptel.forwarding import Forwarding
from hoptel.metrics import CounterChild
from hoptel.otel_internals import exporter_client, http_client_transport, set_exporter_client, set_http_client_transport

if TYPE_CHECKING:
    from hoptel.self_metrics import SelfMetrics

__all__ = [
    "ObservedStub",
    "ObservedTransport",
    "TracksGrpcOutages",
    "TracksOutages",
    "observe_grpc_stub",
    "observe_http_transport",
    "track_exporter",
    "track_outages",
    "tracked_export",
]

_R = TypeVar("_R")


class ObservedStub(Forwarding):
    """A gRPC ``Export`` stub that reports each call's outcome to a tracker."""

    _forwarded_to = "_stub"

    def __init__(self, stub: Any, tracker: OutageTracker) -> None:
        self._stub = stub
        self._tracker = tracker

    def Export(self, *args: Any, **kwargs: Any) -> Any:  # the stub method's name
        """Call the real stub; a raised ``RpcError`` is a failed attempt."""
        try:
            response = self._stub.Export(*args, **kwargs)
        except grpc.RpcError as error:
            self._tracker.attempt_failed(_grpc_reason(error))
            raise
        self._tracker.attempt_succeeded()
        return response


def _grpc_reason(error: grpc.RpcError) -> str:
    code = error.code() if isinstance(error, grpc.Call) else None
    details = error.details() if isinstance(error, grpc.Call) else None
    name = code.name if code is not None else type(error).__name__
    return f"{name}: {details}" if details else name


class ObservedTransport(Forwarding):
    """An OTLP/HTTP transport that reports each request's outcome to a tracker (2xx and 3xx go through)."""

    _forwarded_to = "_real"  # the real transport

    def __init__(self, transport: Any, tracker: OutageTracker) -> None:
        self._real = transport
        self._tracker = tracker

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send through the real transport; an error or a status other than 2xx/3xx is a failed attempt."""
        try:
            result = self._real.request(method, url, **kwargs)
        except Exception as error:
            self._tracker.attempt_failed(f"{type(error).__name__}: {error}")
            raise
        status = getattr(result, "status_code", None)
        if status is not None and 200 <= status < 400:
            self._tracker.attempt_succeeded()
        elif status is not None:
            self._tracker.attempt_failed(f"HTTP {status} {getattr(result, 'reason', None) or ''}".rstrip())
        else:
            failure = getattr(result, "error", None)
            reason = f"{type(failure).__name__}: {failure}" if failure is not None else "no response"
            self._tracker.attempt_failed(reason)
        return result

    def is_connection_error(self, error: Exception | None) -> bool:
        """The real transport's answer."""
        return bool(self._real.is_connection_error(error))

    def close(self) -> None:
        """Close the real transport."""
        self._real.close()


def observe_grpc_stub(exporter: Any, tracker: OutageTracker) -> bool:
    """Observe the gRPC exporter's current stub; False if it has none where expected."""
    install = functools.partial(set_exporter_client, exporter)
    return _observe(exporter_client(exporter), "Export", ObservedStub, install, tracker)


def observe_http_transport(exporter: Any, tracker: OutageTracker) -> bool:
    """Observe the HTTP exporter's transport; False if it has none where expected."""
    client = exporter_client(exporter)
    install = functools.partial(set_http_client_transport, client)
    return _observe(http_client_transport(client), "request", ObservedTransport, install, tracker)


def _observe(
    inner: Any,
    method: str,
    observed: type[ObservedStub | ObservedTransport],
    install: Callable[[Any], object],
    tracker: OutageTracker,
) -> bool:
    """Install ``observed(inner, tracker)`` unless ``inner`` is observed already; False if it lacks ``method``."""
    if inner is None or not hasattr(inner, method):
        return False
    if not isinstance(inner, observed):
        install(observed(inner, tracker))
    return True


def tracked_export(tracker: OutageTracker | None, export: Callable[[], _R], items: int) -> _R:
    """Run ``export`` as the tracker's export call; a result other than SUCCESS loses ``items``."""
    if tracker is None:
        return export()
    result = tracker.run(export)
    if getattr(result, "name", None) != "SUCCESS":
        tracker.batch_lost(items)
    return result


class TracksOutages:
    """Base for hoptel's exporters: ``track_outages(tracker)`` reports every attempt to ``tracker``."""

    _outage: OutageTracker | None = None

    def track_outages(self, tracker: OutageTracker) -> bool:
        """Report attempts to ``tracker`` from now on; False when only whole failed exports can be seen."""
        self._outage = tracker
        install_attempt_lines_filter()
        return self._observe_attempts(tracker)

    def _observe_attempts(self, tracker: OutageTracker) -> bool:
        return False


class TracksGrpcOutages(TracksOutages):
    """Base for hoptel's OTLP/gRPC exporters: their stub is observed, also when OpenTelemetry makes it again."""

    def _observe_attempts(self, tracker: OutageTracker) -> bool:
        return observe_grpc_stub(self, tracker)

    def _initialize_channel_and_stub(self) -> None:
        # The OTel gRPC exporter this is mixed into defines it (unannotated; otel_internals.GRPC_EXPORTER_STUB_HOOK);
        # a new stub is observed like the first.
        super()._initialize_channel_and_stub()  # type: ignore[misc]
        if self._outage is not None:
            observe_grpc_stub(self, self._outage)


def track_exporter(
    exporter: object,
    signal: str,
    endpoint: str,
    attempt_failures: CounterChild,
    dropped_total: Callable[[], float] | None = None,
    *,
    unit: str = "items",
) -> OutageTracker | None:
    """A tracker for ``exporter``'s outages, or None when it is not one of hoptel's OTLP exporters."""
    if not isinstance(exporter, TracksOutages):
        return None
    tracker = OutageTracker(signal, endpoint, attempt_failures, dropped_total, unit=unit)
    exporter.track_outages(tracker)
    return tracker


def track_outages(
    span_exporter: object,
    log_exporter: object,
    self_metrics: SelfMetrics,
    traces_endpoint: str | None,
    logs_endpoint: str | None,
) -> list[OutageTracker]:
    """Trackers for one Telemetry's span and log exporters (those that are hoptel's OTLP exporters).

    The span tracker's "dropped meanwhile" is the growth of ``hoptel_spans_dropped_total`` (full queue and failed
    exports alike); the log tracker's counts the records of failed log exports.
    """
    failures = self_metrics.export_attempt_failures
    dropped = self_metrics.spans_dropped
    trackers = [
        track_exporter(
            span_exporter,
            "traces",
            traces_endpoint or "",
            failures.labels("traces"),
            lambda: dropped.value,
            unit="spans",
        ),
        track_exporter(log_exporter, "logs", logs_endpoint or "", failures.labels("logs"), unit="log records"),
    ]
    return [tracker for tracker in trackers if tracker is not None]
