"""The sync gRPC server interceptor: one SERVER span and one latency observation per RPC, all four shapes.

>>> server = grpc.server(pool, interceptors=[hoptel.server_interceptor()])      # doctest: +SKIP

Each method's handler is wrapped once and the wrapper cached by method name, so a call costs one dict lookup
before the handler runs. The span starts on the thread-pool thread that runs the handler and is current while
the handler runs (for a response stream: while it produces each response), so calls the handler makes are its
children. The status is the one grpcio sends: the code the handler set or aborted with, UNKNOWN for an uncaught
exception (recorded once as an exception event), CANCELLED or DEADLINE_EXCEEDED when the client went away.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry.context import attach, detach

from hoptel.interceptors.enrich import GrpcEnrichment
from hoptel.interceptors.exclusions import excluding_services
from hoptel.interceptors.extra_labels import ExtraLabels
from hoptel.interceptors.grpc.capture import server_start
from hoptel.interceptors.grpc.names import rpc_type
from hoptel.interceptors.grpc.response_capture import ResponseCapture, server_response_capture
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.grpc.shared import (
    HANDLER_FACTORIES,
    MAX_SERVER_METHODS,
    MethodFilter,
    begin_server_hop,
    method_name,
    traced,
    unknown_route,
)
from hoptel.interceptors.grpc.status import finish_server_raised, finish_server_returned
from hoptel.interceptors.grpc.streams import ReceivedCounter, ServerResponses
from hoptel.interceptors.hooks import GrpcCall, GrpcHook
from hoptel.interceptors.recorder import GrpcHop, HopRecorder, Metadata

if TYPE_CHECKING:
    from hoptel.telemetry import Telemetry

    _ServerInterceptorBase = grpc.ServerInterceptor[Any, Any]
else:
    _ServerInterceptorBase = grpc.ServerInterceptor

__all__ = ["server_interceptor"]

_UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED
_Start = Callable[[GrpcRoute, Metadata], GrpcHop]
_Behavior = Callable[[Any, Any], Any]


def _unary_response(start: _Start, route: GrpcRoute, inner: _Behavior, request_streaming: bool) -> _Behavior:
    """The wrapped behaviour of a unary-response method (unary-unary, stream-unary)."""

    def behavior(request: Any, context: Any) -> Any:
        hop = begin_server_hop(start, route, context)
        if request_streaming:
            request = ReceivedCounter(request, hop)
        token = attach(hop.context)
        try:
            response = inner(request, context)
        except Exception as error:
            finish_server_raised(hop, context, error)
            raise
        finally:
            detach(token)
        finish_server_returned(hop, context)
        return response

    return behavior


def _stream_response(start: _Start, route: GrpcRoute, inner: _Behavior, request_streaming: bool) -> _Behavior:
    """The wrapped behaviour of a response-streaming method (unary-stream, stream-stream)."""

    def behavior(request: Any, context: Any) -> Iterator[Any]:
        hop = begin_server_hop(start, route, context)
        if request_streaming:
            request = ReceivedCounter(request, hop)
        token = attach(hop.context)
        try:
            responses = ServerResponses(inner(request, context), hop, context)
        except Exception as error:
            finish_server_raised(hop, context, error)
            raise
        finally:
            detach(token)
        if not context.add_callback(responses):  # the RPC already terminated (the client is gone)
            responses()
        return responses

    return behavior


def wrap_handler(
    recorder: HopRecorder,
    method: str,
    handler: grpc.RpcMethodHandler[Any, Any],
    start: _Start | None = None,
    *,
    known: bool = True,
    capture: ResponseCapture | None = None,
) -> Any:
    """``handler`` with its behaviour wrapped to record a hop; handlers hoptel cannot wrap are returned as is.

    Non-blocking handlers (grpcio's experimental ``experimental_non_blocking`` callback style) are passed
    through untraced; an ``experimental_thread_pool`` choice is kept. ``start`` starts each hop (default: the
    recorder's ``start_grpc_server``; an interceptor with hooks passes its enrichment's). ``capture`` (when
    response metadata is captured) wraps the handler's own behaviour once more, here, once per method.
    """
    request_streaming = bool(handler.request_streaming)
    response_streaming = bool(handler.response_streaming)
    attribute, factory = HANDLER_FACTORIES[(request_streaming, response_streaming)]
    inner = getattr(handler, attribute)
    if inner is None or getattr(inner, "experimental_non_blocking", False):
        return handler
    route = recorder.grpc_route("server", rpc_type(request_streaming, response_streaming), method, known=known)
    build = _stream_response if response_streaming else _unary_response
    pool = getattr(inner, "experimental_thread_pool", None)
    if capture is not None:
        inner = capture(inner, response_streaming)
    behavior: Any = build(start or recorder.start_grpc_server, route, inner, request_streaming)
    if pool is not None:
        behavior.experimental_thread_pool = pool
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _ServerInterceptor(_ServerInterceptorBase):
    """Wraps each method's handler once; counts methods the server lacks under one ``unknown`` series."""

    def __init__(
        self, recorder: HopRecorder, method_filter: MethodFilter | None, enrichment: GrpcEnrichment | None = None
    ) -> None:
        self._recorder = recorder
        # The user's filter and the excluded services (health checks by default): asked once per method.
        self._filter = excluding_services(recorder.telemetry.config.conventions.grpc_excluded_services, method_filter)
        self._start: _Start = server_start(recorder, enrichment)
        self._capture = server_response_capture(recorder)  # None unless response metadata is captured
        # method -> (the handler grpcio returned, what we return for it): the identity check notices a
        # generic handler that hands out a new handler object.
        self._handlers: dict[str, tuple[Any, Any]] = {}
        self._wrap_lock = threading.Lock()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Return the method's handler, wrapped to record the RPC."""
        handler = continuation(handler_call_details)
        entry = self._handlers.get(handler_call_details.method)
        if entry is not None and entry[0] is handler:
            wrapped: grpc.RpcMethodHandler[Any, Any] = entry[1]
            return wrapped
        wrapped = self._wrap(handler_call_details, handler)
        return wrapped

    def _wrap(self, details: grpc.HandlerCallDetails, handler: Any) -> Any:
        method = details.method
        if handler is None:  # grpcio answers UNIMPLEMENTED; record it without caching the (possibly junk) name
            if traced(self._filter, method_name(method)):
                hop = self._start(unknown_route(self._recorder, method), details.invocation_metadata)
                hop.finish(_UNIMPLEMENTED, "Method not found!")
            return None
        with self._wrap_lock:  # handler threads wrap concurrently: keep the cap exact (first call of a method only)
            if len(self._handlers) < MAX_SERVER_METHODS or method in self._handlers:
                wrapped = (
                    wrap_handler(self._recorder, method, handler, self._start, capture=self._capture)
                    if traced(self._filter, method)
                    else handler
                )
                self._handlers[method] = (handler, wrapped)
                return wrapped
        # A catch-all handler answering any name: count it under ``unknown``, cache nothing.
        if not traced(self._filter, method):
            return handler
        return wrap_handler(self._recorder, method, handler, self._start, known=False, capture=self._capture)


def server_interceptor(
    telemetry: Telemetry | None = None,
    *,
    filter: MethodFilter | None = None,  # the documented keyword, as in the OTel instrumentations
    request_hook: GrpcHook | None = None,
    response_hook: GrpcHook | None = None,
    extra_labels: ExtraLabels[GrpcCall] | None = None,
) -> grpc.ServerInterceptor[Any, Any]:
    """A ``grpc.ServerInterceptor`` recording a SERVER span and the ``grpc_server_*`` metrics for every RPC.

    Args:
        telemetry: Where spans and metrics go (default: the latest ``hoptel.setup()``'s, else the OTel global
            tracer provider and a process-wide registry). Resolved once, here.
        filter: Called once per method with its full name (``/package.Service/Method``); False skips tracing
            and metrics for that method, e.g. ``lambda m: not m.startswith("/internal.")``. Methods of excluded
            services (``grpc.health.v1.Health``, ``OTEL_PYTHON_GRPC_EXCLUDED_SERVICES``) are skipped without asking it.
        request_hook: ``hook(span, call)`` run when an RPC starts, before the handler (see ``interceptors.hooks``).
        response_hook: ``hook(span, call)`` run when an RPC ends (a stream: when it ends), with ``call.code`` set.
        extra_labels: Extra metric labels taken from each call, capped (see ``interceptors.extra_labels``).

    Returns:
        The interceptor, for ``grpc.server(pool, interceptors=[...])``.
    """
    recorder = HopRecorder.of(telemetry)
    enrichment = GrpcEnrichment.build(recorder, "server", request_hook, response_hook, extra_labels)
    return _ServerInterceptor(recorder, filter, enrichment)
