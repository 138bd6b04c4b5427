"""The sync gRPC server interceptor: one SERVER span and one latency observation per RPC, all four shapes.

>>> server = grpc.server(pool, interceptors=[hoptel.server_interceptor()])      # doctest: +SKIP

Each method's handler is wrapped once and the wrapper cached by method name, so a call costs one dict lookup
before the handler runs. The span starts on the thread-pool thread that runs the handler and is current while
the handler runs (for a response stream: while it produces each response), so calls the handler makes are its
children. The status is the one grpcio sends: the code the handler set or aborted with, UNKNOWN for an uncaught
exception (recorded once as an exception event), CANCELLED or DEADLINE_EXCEEDED when the client went away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from hoptel.interceptors.grpc import bases
from hoptel.interceptors.grpc.capture import ServerStart
from hoptel.interceptors.grpc.handlers import Build, HandlerCache
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.grpc.shared import begin_server_hop, recording
from hoptel.interceptors.grpc.status import finish_server_raised, finish_server_returned
from hoptel.interceptors.grpc.streams import ReceivedCounter, ServerResponses
from hoptel.otel_internals import attach_context, detach_context

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from hoptel.interceptors.grpc.shared import GrpcOptions
    from hoptel.telemetry import Telemetry

__all__ = ["server_interceptor"]

_Start = ServerStart
_Behavior = Callable[[Any, Any], Any]


def _unary_response(start: _Start, route: GrpcRoute, inner: _Behavior, request_streaming: bool) -> _Behavior:
    """The wrapped behaviour of a unary-response method (unary-unary, stream-unary)."""

    def behavior(request: Any, context: Any) -> Any:
        hop = begin_server_hop(start, route, context)
        if request_streaming:
            request = ReceivedCounter(request, hop)
        token = attach_context(hop.context)
        try:
            response = inner(request, context)
        except Exception as error:
            finish_server_raised(hop, context, error)
            raise
        finally:
            detach_context(token)
        finish_server_returned(hop, context)
        return response

    return behavior


def _stream_response(start: _Start, route: GrpcRoute, inner: _Behavior, request_streaming: bool) -> _Behavior:
    """The wrapped behaviour of a response-streaming method (unary-stream, stream-stream)."""

    def behavior(request: Any, context: Any) -> Iterator[Any]:
        hop = begin_server_hop(start, route, context)
        if request_streaming:
            request = ReceivedCounter(request, hop)
        token = attach_context(hop.context)
        try:
            responses = ServerResponses(inner(request, context), hop, context)
        except Exception as error:
            finish_server_raised(hop, context, error)
            raise
        finally:
            detach_context(token)
        if not context.add_callback(responses):  # the RPC already terminated (the client is gone)
            responses()
        return responses

    return behavior


def _pick(inner: Any, response_streaming: bool) -> Build | None:
    """How a sync behaviour is wrapped; handlers hoptel cannot wrap are passed through untraced.

    Non-blocking handlers (grpcio's experimental ``experimental_non_blocking`` callback style) are among them.
    """
    if inner is None or getattr(inner, "experimental_non_blocking", False):
        return None
    return _stream_response if response_streaming else _unary_response


class _ServerInterceptor(HandlerCache, bases.ServerInterceptor):
    """Wraps each method's handler once (see ``interceptors.grpc.handlers``); a thin adapter to grpc's interface."""

    pick = staticmethod(_pick)

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
        wrapped = self.wrapped(handler_call_details, handler)
        return wrapped


def server_interceptor(
    telemetry: Telemetry | None = None,
    **options: Unpack[GrpcOptions],
) -> grpc.ServerInterceptor[Any, Any]:
    """A ``grpc.ServerInterceptor`` recording a SERVER span and the ``grpc_server_*`` metrics for every RPC.

    Args:
        telemetry: Where spans and metrics go (default: the latest ``hoptel.setup()``'s, else the OTel global
            tracer provider and a process-wide registry). Resolved once, here.
        **options: ``filter``, ``request_hook``, ``response_hook``, ``extra_labels``: see
            :class:`~hoptel.interceptors.grpc.shared.GrpcOptions`.

    Returns:
        The interceptor, for ``grpc.server(pool, interceptors=[...])``.
    """
    recorder, enrichment = recording(telemetry, "server", options)
    return _ServerInterceptor(recorder, options.get("filter"), enrichment)
