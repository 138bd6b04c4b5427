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

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc

from hoptel.interceptors.enrich import GrpcEnrichment
from hoptel.interceptors.extra_labels import ExtraLabels
from hoptel.interceptors.grpc.capture import client_start
from hoptel.interceptors.grpc.client_response import ClientResponseCapture, client_response_capture
from hoptel.interceptors.grpc.names import BIDI_STREAM, CLIENT_STREAM, SERVER_STREAM, UNARY
from hoptel.interceptors.grpc.shared import MethodFilter, RouteTable, target_attributes, with_metadata
from hoptel.interceptors.grpc.streams import ClientResponses, SentCounter, watch_call
from hoptel.interceptors.hooks import GrpcCall, GrpcHook
from hoptel.interceptors.recorder import GrpcHop, HopRecorder

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

_INTERNAL = grpc.StatusCode.INTERNAL
_Continuation = Callable[[Any, Any], Any]


def _invoke(continuation: _Continuation, details: Any, request: Any, hop: GrpcHop) -> Any:
    """Run the continuation; if it raises (grpcio then reports INTERNAL), end the hop with the exception."""
    try:
        return continuation(details, request)
    except Exception as error:
        hop.finish(_INTERNAL, f"{type(error).__qualname__}: {error}", error)
        raise


class ClientInterceptor(_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream):
    """Records every RPC of an intercepted channel; build it with :func:`client_interceptor`."""

    def __init__(
        self,
        recorder: HopRecorder,
        method_filter: MethodFilter | None,
        target: str | None,
        enrichment: GrpcEnrichment | None = None,
    ) -> None:
        self._start: Callable[..., tuple[GrpcHop, Any] | None] = client_start(recorder, enrichment)
        self._peer = target_attributes(target) or None
        self._unary_unary = RouteTable(recorder, "client", UNARY, method_filter)
        self._unary_stream = RouteTable(recorder, "client", SERVER_STREAM, method_filter)
        self._stream_unary = RouteTable(recorder, "client", CLIENT_STREAM, method_filter)
        self._stream_stream = RouteTable(recorder, "client", BIDI_STREAM, method_filter)

    def intercept_unary_unary(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a unary-unary RPC; returns grpcio's outcome (blocking call) or future unchanged."""
        route = self._unary_unary[client_call_details.method]
        started = None if route is None else self._start(route, client_call_details.metadata, self._peer)
        if started is None:
            return continuation(client_call_details, request)
        hop, metadata = started
        call = _invoke(continuation, with_metadata(client_call_details, metadata), request, hop)
        watch_call(call, hop)
        return call

    def intercept_unary_stream(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a server-streaming RPC; returns a response iterator that counts responses."""
        route = self._unary_stream[client_call_details.method]
        started = None if route is None else self._start(route, client_call_details.metadata, self._peer)
        if started is None:
            return continuation(client_call_details, request)
        hop, metadata = started
        call = _invoke(continuation, with_metadata(client_call_details, metadata), request, hop)
        return ClientResponses(call, hop)

    def intercept_stream_unary(
        self, continuation: _Continuation, client_call_details: Any, request_iterator: Iterable[Any]
    ) -> Any:
        """Record a client-streaming RPC, counting requests as grpcio sends them."""
        route = self._stream_unary[client_call_details.method]
        started = None if route is None else self._start(route, client_call_details.metadata, self._peer)
        if started is None:
            return continuation(client_call_details, request_iterator)
        hop, metadata = started
        requests = SentCounter(request_iterator, hop)
        call = _invoke(continuation, with_metadata(client_call_details, metadata), requests, hop)
        watch_call(call, hop)
        return call

    def intercept_stream_stream(
        self, continuation: _Continuation, client_call_details: Any, request_iterator: Iterable[Any]
    ) -> Any:
        """Record a bidi-streaming RPC, counting requests and responses."""
        route = self._stream_stream[client_call_details.method]
        started = None if route is None else self._start(route, client_call_details.metadata, self._peer)
        if started is None:
            return continuation(client_call_details, request_iterator)
        hop, metadata = started
        requests = SentCounter(request_iterator, hop)
        call = _invoke(continuation, with_metadata(client_call_details, metadata), requests, hop)
        return ClientResponses(call, hop)

    def pass_through(self) -> None:
        """Stop recording: from now on every call goes through untouched (another hoptel interceptor records it)."""
        self._start = _no_hop


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
        super().__init__(recorder, method_filter, target, enrichment)
        self._start = capture.start(self._start)
        self._capture = capture

    def intercept_unary_unary(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a unary-unary RPC and its response metadata."""
        return super().intercept_unary_unary(self._capture.continuation(continuation), client_call_details, request)

    def intercept_stream_unary(
        self, continuation: _Continuation, client_call_details: Any, request_iterator: Iterable[Any]
    ) -> Any:
        """Record a client-streaming RPC and its response metadata."""
        watched = self._capture.continuation(continuation)
        return super().intercept_stream_unary(watched, client_call_details, request_iterator)


def _no_hop(*args: Any) -> None:
    """A start method that never starts a hop."""
    return None


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
