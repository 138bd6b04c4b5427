"""The sync gRPC client interceptor: one CLIENT span and one latency observation per RPC, all four shapes.

>>> channel = grpc.intercept_channel(grpc.insecure_channel(target), hoptel.client_interceptor(target=target))
...                                                                                   # doctest: +SKIP

One object implements the four ``grpc.*ClientInterceptor`` interfaces. The CLIENT span is a child of the
current span and is injected into a copy of the call's metadata (the caller's entries kept). What the caller
gets back is what grpcio would have returned: ``with_call()`` and ``future()`` work unchanged, and a response
stream is still a ``grpc.Call``/``grpc.Future`` iterator with ``cancel()``, ``code()``, ``details()`` and
``trailing_metadata()``. The hop ends when the RPC terminates, read from grpcio's termination callback, so a
call that never dispatches is never waited on; cancelling (or dropping) a call ends it CANCELLED.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from hoptel.interceptors.enrich import GrpcEnrichment
from hoptel.interceptors.extra_labels import ExtraLabels
from hoptel.interceptors.grpc.capture import ClientStart, client_start
from hoptel.interceptors.grpc.client_engine import (
    ClientMethod,
    StreamStreamMethod,
    StreamUnaryMethod,
    UnaryStreamMethod,
    UnaryUnaryMethod,
)
from hoptel.interceptors.grpc.client_response import ClientResponseCapture, client_response_capture
from hoptel.interceptors.grpc.names import BIDI_STREAM, CLIENT_STREAM, SERVER_STREAM, UNARY
from hoptel.interceptors.grpc.shared import MethodFilter, MethodTable, target_attributes
from hoptel.interceptors.hooks import GrpcCall, GrpcHook
from hoptel.interceptors.recorder import HopRecorder

if TYPE_CHECKING:
    from hoptel.telemetry import Telemetry

    _UnaryUnary = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.UnaryStreamClientInterceptor
    _StreamUnary = grpc.StreamUnaryClientInterceptor
    _StreamStream = grpc.StreamStreamClientInterceptor

__all__ = ["ClientInterceptor", "client_interceptor"]

_Continuation = Callable[[Any, Any], Any]


class _Untraced(dict[Any, None]):
    """The route table of an interceptor that passes every call through (see ``pass_through``)."""

    def __missing__(self, method: Any) -> None:
        return None


class ClientInterceptor(_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream):
    """Records every RPC of an intercepted channel; build it with :func:`client_interceptor`.

    A thin adapter over the client engine (``interceptors.grpc.client_engine``): one engine method per method
    name and shape, built on its first call, records each call through grpcio's continuation.
    """

    def __init__(
        self,
        recorder: HopRecorder,
        method_filter: MethodFilter | None,
        target: str | None,
        enrichment: GrpcEnrichment | None = None,
    ) -> None:
        self._start = start = self._starting(client_start(recorder, enrichment))
        peer = target_attributes(target) or None

        def table(rpc_type: str, shape: type[ClientMethod]) -> Mapping[Any, ClientMethod | None]:
            return MethodTable(
                recorder, "client", rpc_type, method_filter, lambda route: shape(None, route, start, peer)
            )

        self._unary_unary = table(UNARY, UnaryUnaryMethod)
        self._unary_stream = table(SERVER_STREAM, UnaryStreamMethod)
        self._stream_unary = table(CLIENT_STREAM, StreamUnaryMethod)
        self._stream_stream = table(BIDI_STREAM, StreamStreamMethod)

    def _starting(self, start: ClientStart) -> ClientStart:
        """The start the engine methods use (a capturing interceptor's remembers each span)."""
        return start

    def intercept_unary_unary(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a unary-unary RPC; returns grpcio's outcome (blocking call) or future unchanged."""
        method = self._unary_unary[client_call_details.method]
        if method is None:
            return continuation(client_call_details, request)
        return method.intercept(continuation, client_call_details, request)

    def intercept_unary_stream(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a server-streaming RPC; returns a response iterator that counts responses."""
        method = self._unary_stream[client_call_details.method]
        if method is None:
            return continuation(client_call_details, request)
        return method.intercept(continuation, client_call_details, request)

    def intercept_stream_unary(
        self, continuation: _Continuation, client_call_details: Any, request_iterator: Iterable[Any]
    ) -> Any:
        """Record a client-streaming RPC, counting requests as grpcio sends them."""
        method = self._stream_unary[client_call_details.method]
        if method is None:
            return continuation(client_call_details, request_iterator)
        return method.intercept(continuation, client_call_details, request_iterator)

    def intercept_stream_stream(
        self, continuation: _Continuation, client_call_details: Any, request_iterator: Iterable[Any]
    ) -> Any:
        """Record a bidi-streaming RPC, counting requests and responses."""
        method = self._stream_stream[client_call_details.method]
        if method is None:
            return continuation(client_call_details, request_iterator)
        return method.intercept(continuation, client_call_details, request_iterator)

    def pass_through(self) -> None:
        """Stop recording: from now on every call goes through untouched (another hoptel interceptor records it)."""
        self._unary_unary = self._unary_stream = self._stream_unary = self._stream_stream = _Untraced()


class _CapturingClientInterceptor(ClientInterceptor):
    """The interceptor recording response metadata of unary-response RPCs (only built when it is asked for)."""

    def __init__(
        self,
        recorder: HopRecorder,
        method_filter: MethodFilter | None,
        target: str | None,
        enrichment: GrpcEnrichment | None,
        capture: ClientResponseCapture,
    ) -> None:
        self._capture = capture
        super().__init__(recorder, method_filter, target, enrichment)

    def _starting(self, start: ClientStart) -> ClientStart:
        return self._capture.start(start)

    def intercept_unary_unary(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a unary-unary RPC and its response metadata."""
        return super().intercept_unary_unary(self._capture.continuation(continuation), client_call_details, request)

    def intercept_stream_unary(
        self, continuation: _Continuation, client_call_details: Any, request_iterator: Iterable[Any]
    ) -> Any:
        """Record a client-streaming RPC and its response metadata."""
        watched = self._capture.continuation(continuation)
        return super().intercept_stream_unary(watched, client_call_details, request_iterator)


def client_interceptor(
    telemetry: Telemetry | None = None,
    *,
    filter: MethodFilter | None = None,  # the documented keyword, as in the OTel instrumentations
    target: str | None = None,
    request_hook: GrpcHook | None = None,
    response_hook: GrpcHook | None = None,
    extra_labels: ExtraLabels[GrpcCall] | None = None,
) -> ClientInterceptor:
    """One interceptor for all four RPC shapes of a sync channel, for ``grpc.intercept_channel``.

    Args:
        telemetry: Where spans and metrics go (default: the latest ``hoptel.setup()``'s). Resolved once, here.
        filter: Called once per method with its full name; False skips tracing and metrics for that method.
            Methods of excluded services (``grpc.health.v1.Health``, ``OTEL_PYTHON_GRPC_EXCLUDED_SERVICES``) are
            skipped without asking it.
        target: The channel's target (``host:port``); sets ``server.address`` / ``server.port`` on spans.
        request_hook: ``hook(span, call)`` run when a call starts, before it is sent (see ``interceptors.hooks``).
        response_hook: ``hook(span, call)`` run when a call ends (a stream: when it ends), with ``call.code`` set.
        extra_labels: Extra metric labels taken from each call, capped (see ``interceptors.extra_labels``).

    Returns:
        The interceptor: ``grpc.intercept_channel(channel, hoptel.client_interceptor(target=target))``.
    """
    recorder = HopRecorder.of(telemetry)
    enrichment = GrpcEnrichment.build(recorder, "client", request_hook, response_hook, extra_labels)
    capture = client_response_capture(recorder)
    if capture is not None:
        return _CapturingClientInterceptor(recorder, filter, target, enrichment, capture)
    return ClientInterceptor(recorder, filter, target, enrichment)
