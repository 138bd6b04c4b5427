"""OTLP/gRPC: the collector's ``TraceService``, ``LogsService`` and ``MetricsService`` on a ``grpc.server``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from typing import Generic, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]  # googleapis-common-protos ships .pyi files but no py.typed
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from hoptel.receiver.behaviour import Behaviour, Refusal
from hoptel.receiver.convert import logs_from_request, spans_from_request
from hoptel.receiver.metrics import metrics_from_request
from hoptel.receiver.model import Protocol
from hoptel.receiver.store import TelemetryStore

__all__ = ["RETRY_INFO_KEY", "STATUS_DETAILS_KEY", "start_grpc_server"]

RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
"""Trailing metadata key with a serialized ``google.rpc.RetryInfo`` (what the OTel Python exporter reads)."""

STATUS_DETAILS_KEY = "grpc-status-details-bin"
"""Trailing metadata key of the standard rich error model: a ``google.rpc.Status`` with ``RetryInfo``."""

_Request = TypeVar("_Request")
_Items = TypeVar("_Items")
_Response = TypeVar("_Response")

_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_WORKERS = 8


def _refusal_trailers(refusal: Refusal) -> tuple[tuple[str, bytes], ...]:
    if refusal.retry_after_s is None:
        return ()
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(round(refusal.retry_after_s * 1e9))
    retry_info = error_details_pb2.RetryInfo(retry_delay=delay)
    detail = any_pb2.Any()
    detail.Pack(retry_info)
    status = status_pb2.Status(code=refusal.grpc_code.value[0], message=refusal.message, details=[detail])
    return (
        (RETRY_INFO_KEY, retry_info.SerializeToString()),
        (STATUS_DETAILS_KEY, status.SerializeToString()),
    )


class _Gate:
    """What every service does first: count the request, wait the delay, maybe refuse it."""

    def __init__(self, store: TelemetryStore, behaviour: Behaviour, stopping: threading.Event) -> None:
        self.store = store
        self._behaviour = behaviour
        self._stopping = stopping

    def admit(self, context: grpc.ServicerContext) -> None:
        """Return when the request may be handled; otherwise abort the RPC (``abort()`` raises)."""
        self.store.count_request("grpc")
        refusal = self._behaviour.admit(self._stopping)
        if refusal is not None:
            context.set_trailing_metadata(_refusal_trailers(refusal))
            context.abort(refusal.grpc_code, refusal.message)


class _ExportService(Generic[_Request, _Items, _Response]):
    """One OTLP service: its only method, ``Export``, admits the request, stores what it carries, answers empty."""

    def __init__(
        self,
        gate: _Gate,
        convert: Callable[[_Request, Protocol], _Items],
        add: Callable[[_Items], None],
        response: Callable[[], _Response],
    ) -> None:
        self._gate = gate
        self._convert = convert
        self._add = add
        self._response = response

    def Export(self, request: _Request, context: grpc.ServicerContext) -> _Response:
        self._gate.admit(context)
        self._add(self._convert(request, "grpc"))
        return self._response()


def start_grpc_server(
    host: str, port: int, store: TelemetryStore, behaviour: Behaviour, stopping: threading.Event
) -> tuple[grpc.Server, int]:
    """Bind and start an insecure OTLP/gRPC server.

    ``SO_REUSEPORT`` is off, so a port another process holds is an error rather than silently shared.

    Args:
        host: The address to bind, e.g. ``"127.0.0.1"``.
        port: The port; 0 picks a free one.
        store: Where accepted spans, logs and metrics go.
        behaviour: Consulted for every export request.
        stopping: Set when the receiver stops; cuts delays short.

    Returns:
        The started server and the bound port.

    Raises:
        OSError: The address could not be bound.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="hoptel-receiver-grpc"),
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ],
    )
    gate = _Gate(store, behaviour, stopping)
    traces = _ExportService(gate, spans_from_request, store.add_spans, trace_service_pb2.ExportTraceServiceResponse)
    logs = _ExportService(gate, logs_from_request, store.add_logs, logs_service_pb2.ExportLogsServiceResponse)
    metrics = _ExportService(
        gate, metrics_from_request, store.add_metrics, metrics_service_pb2.ExportMetricsServiceResponse
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(traces, server)  # type: ignore[no-untyped-call]  # generated code has no annotations
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(logs, server)  # type: ignore[no-untyped-call]  # generated code has no annotations
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(metrics, server)  # type: ignore[no-untyped-call]  # generated code has no annotations
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio raises RuntimeError when the bind fails
        raise OSError(f"hoptel receiver: cannot bind OTLP/gRPC to {address}: {exc}") from exc
    if bound == 0:
        raise OSError(f"hoptel receiver: cannot bind OTLP/gRPC to {address}")
    server.start()
    return server, bound
