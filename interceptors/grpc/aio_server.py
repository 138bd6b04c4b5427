"""The grpc.aio server interceptor: one SERVER span and one latency observation per RPC, all four shapes.

>>> server = grpc.aio.server(interceptors=[hoptel.aio_server_interceptor()])      # doctest: +SKIP

The aio twin of :mod:`hoptel.interceptors.grpc.server`: each method's handler is wrapped once and cached, the
SERVER span is current in the handler's task while it runs (for an async-generator handler: while it produces
each response), and the status is the one grpc.aio sends: the code set or aborted with, UNKNOWN for an uncaught
exception (one exception event), CANCELLED or DEADLINE_EXCEEDED when grpc cancels the handler's task.
Streaming handlers get a servicer context that also counts what they ``read()`` and ``write()`` themselves.
Sync handlers that an aio server runs on its migration thread pool are passed through untraced.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from hoptel.interceptors.grpc import bases
from hoptel.interceptors.grpc.aio_context import CountingServicerContext
from hoptel.interceptors.grpc.aio_streams import count_received, server_done_callback
from hoptel.interceptors.grpc.capture import ServerStart
from hoptel.interceptors.grpc.handlers import Build, HandlerCache
from hoptel.interceptors.grpc.names import BIDI_STREAM, SERVER_STREAM
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.grpc.shared import begin_server_hop, recording
from hoptel.interceptors.grpc.status import finish_aio_server_raised, finish_aio_server_returned
from hoptel.interceptors.grpc.streams import count
from hoptel.otel_internals import attach_context, detach_context

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from hoptel.interceptors.grpc.shared import GrpcOptions
    from hoptel.telemetry import Telemetry

__all__ = ["aio_server_interceptor"]

_Start = ServerStart


def _coroutine_response(start: _Start, route: GrpcRoute, inner: Any, request_streaming: bool) -> Any:
    """The wrapped coroutine of a method whose handler is one: a unary response, or responses it ``write()``s.

    The handler gets the counting context when it reads requests or writes responses through it.
    """
    writes = route.rpc_type in (SERVER_STREAM, BIDI_STREAM)
    counting_context = request_streaming or writes

    async def behavior(request: Any, context: Any) -> Any:
        hop = begin_server_hop(start, route, context)
        if request_streaming:
            request = count_received(request, hop)
        token = attach_context(hop.context)
        try:
            response = await inner(request, CountingServicerContext(context, hop) if counting_context else context)
        except BaseException as error:
            finish_aio_server_raised(hop, context, error)
            raise
        finally:
            detach_context(token)
        finish_aio_server_returned(hop, context)
        return None if writes else response

    return behavior


def _generator_response(start: _Start, route: GrpcRoute, inner: Any, request_streaming: bool) -> Any:
    """The wrapped async generator of a response-streaming method written as an async generator.

    The span is attached around each step of the handler's generator only, never across a ``yield``, so it is
    always detached in the task that attached it. grpc writes each response outside the generator; if the client
    cancels there, the done callback ends the hop (and the ``GeneratorExit`` when grpc drops the generator).
    """

    async def behavior(request: Any, context: Any) -> AsyncIterator[Any]:
        hop = begin_server_hop(start, route, context)
        if request_streaming:
            request = count_received(request, hop)
        context.add_done_callback(functools.partial(server_done_callback, hop))
        responses = None
        try:
            responses = inner(request, CountingServicerContext(context, hop))
            while True:
                token = attach_context(hop.context)
                try:
                    response = await responses.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    detach_context(token)
                count(hop, "sent")
                yield response
        except BaseException as error:
            finish_aio_server_raised(hop, context, error)
            if isinstance(error, GeneratorExit) and responses is not None:
                await responses.aclose()  # grpc dropped us mid-stream: let the handler's finally blocks run
            raise
        finish_aio_server_returned(hop, context)

    return behavior


def _pick(inner: Any, response_streaming: bool) -> Build | None:
    """How an aio behaviour is wrapped: a coroutine or an async generator; a sync behaviour passes through."""
    if inspect.isasyncgenfunction(inner) and response_streaming:
        return _generator_response
    if inspect.iscoroutinefunction(inner):
        return _coroutine_response
    return None  # a sync behaviour (the server's migration thread pool runs it) or none at all


class _AioServerInterceptor(HandlerCache, bases.AioServerInterceptor):
    """Wraps each method's handler once (see ``interceptors.grpc.handlers``); a thin adapter to grpc.aio's."""

    pick = staticmethod(_pick)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Return the method's handler, wrapped to record the RPC."""
        handler = await continuation(handler_call_details)
        entry = self._handlers.get(handler_call_details.method)
        if entry is not None and entry[0] is handler:
            wrapped: grpc.RpcMethodHandler[Any, Any] = entry[1]
            return wrapped
        wrapped = self.wrapped(handler_call_details, handler)
        return wrapped


def aio_server_interceptor(
    telemetry: Telemetry | None = None,
    **options: Unpack[GrpcOptions],
) -> aio.ServerInterceptor[Any, Any]:
    """A ``grpc.aio.ServerInterceptor`` recording a SERVER span and the ``grpc_server_*`` metrics for every RPC.

    Args:
        telemetry: Where spans and metrics go (default: the latest ``hoptel.setup()``'s). Resolved once, here.
        **options: ``filter``, ``request_hook``, ``response_hook``, ``extra_labels``: see
            :class:`~hoptel.interceptors.grpc.shared.GrpcOptions`.

    Returns:
        The interceptor, for ``grpc.aio.server(interceptors=[...])``.
    """
    recorder, enrichment = recording(telemetry, "server", options)
    return _AioServerInterceptor(recorder, options.get("filter"), enrichment)
