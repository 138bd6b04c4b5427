"""The grpc.aio client engine: what recording one call of one method does, for both aio client APIs.

``hoptel.instrument_aio_channel`` and ``hoptel.aio_client_interceptor`` record the same hops; this module is the
one place that says how. An :class:`AioClientMethod` holds one method's route, the hop start and the peer
attributes. It records a call in one of two ways, which differ only in how grpc is reached:

* :meth:`AioClientMethod.run` (the instrumented channel, in the caller's task): start the hop, count a request
  iterator, start grpc's call (that only queues the RPC) with the injected metadata, end the hop from the call's
  done callback, and hand back grpc's call, or the channel's counting proxy when a streamed side is counted.
* :meth:`AioClientMethod.intercept` (the interceptor, in the task grpc.aio runs interceptors in): the same, sent
  through grpc.aio's continuation, which is awaited; a response stream is handed back as a counting iterator.

Either way a call that fails before grpc has it ends the hop with what failed (:func:`_failed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import grpc
from grpc import aio
from opentelemetry.util.types import AttributeValue

from hoptel.interceptors.grpc.aio_streams import count_responses, count_sent, watch_aio_call
from hoptel.interceptors.grpc.capture import ClientStart
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.recorder import GrpcHop

__all__ = [
    "AioClientMethod",
    "AioStreamStreamMethod",
    "AioStreamUnaryMethod",
    "AioUnaryStreamMethod",
    "AioUnaryUnaryMethod",
]

_CANCELLED = grpc.StatusCode.CANCELLED
_INTERNAL = grpc.StatusCode.INTERNAL
_Continuation = Callable[[Any, Any], Any]  # returns an awaitable; grpc-stubs type it as the call itself
Peer = Mapping[str, AttributeValue] | None


def _failed(hop: GrpcHop, error: BaseException) -> None:
    """End ``hop`` for a call that failed before grpc had it: cancelled, grpc's status, else INTERNAL."""
    if isinstance(error, asyncio.CancelledError):
        hop.finish(_CANCELLED)
    elif isinstance(error, aio.AioRpcError):
        hop.finish(error.code(), error.details())
    else:
        hop.finish(_INTERNAL, f"{type(error).__qualname__}: {error}", error)


def _details(details: Any, metadata: list[tuple[str, str | bytes]]) -> aio.ClientCallDetails:
    """Copy of aio ``ClientCallDetails`` carrying ``metadata`` (as ``grpc.aio.Metadata``, as grpc passes it)."""
    return aio.ClientCallDetails(
        details.method,
        details.timeout,
        aio.Metadata(*metadata),
        details.credentials,
        details.wait_for_ready,
    )


class AioClientMethod:
    """One method of one RPC shape as an aio client records it: grpc's multicallable, the route, the hop start.

    ``inner`` is grpc's multicallable for the method (the instrumented channel's), or None (the interceptor's,
    which sends through each call's continuation).
    """

    __slots__ = ("_inner", "_peer", "_route", "_start")
    counts_requests: ClassVar[bool] = False  # request-streaming shapes count an iterator's requests
    counts_responses: ClassVar[bool] = False  # response-streaming shapes count what the caller reads
    proxy: ClassVar[type[Any] | None] = None  # the channel's counting call (``proxy(call, hop)``), when one counts

    def __init__(self, inner: Any, route: GrpcRoute, start: ClientStart, peer: Peer) -> None:
        self._inner = inner
        self._route = route
        self._start = start
        self._peer = peer

    def run(self, requests: Any, metadata: Any, options: dict[str, Any]) -> Any:
        """Record one call made through grpc's multicallable; ``options`` are its keyword arguments."""
        started = self._start(self._route, metadata, self._peer)
        if started is None:
            return self._inner(requests, metadata=metadata, **options)
        hop, options["metadata"] = started
        if self.counts_requests and requests is not None:  # None: the caller writes with call.write()
            requests = count_sent(requests, hop)
        try:
            call = self._inner(requests, **options)
        except Exception as error:  # grpc refused the arguments
            _failed(hop, error)
            raise
        watch_aio_call(call, hop)
        return call if self.proxy is None else self.proxy(call, hop)

    async def intercept(self, continuation: _Continuation, details: Any, requests: Any) -> Any:
        """Record one call an interceptor sees, sent through grpc.aio's ``continuation``."""
        started = self._start(self._route, details.metadata, self._peer)
        if started is None:
            return await continuation(details, requests)
        hop, metadata = started
        if self.counts_requests and requests is not None:
            requests = count_sent(requests, hop)
        try:
            call = await continuation(_details(details, metadata), requests)
        except (Exception, asyncio.CancelledError) as error:  # an inner interceptor raised, the task was cancelled
            _failed(hop, error)
            raise
        watch_aio_call(call, hop)
        return count_responses(call, hop) if self.counts_responses else call


class AioUnaryUnaryMethod(AioClientMethod):
    """A recorded unary-unary method."""

    __slots__ = ()


class AioUnaryStreamMethod(AioClientMethod):
    """A recorded server-streaming method; responses are counted."""

    __slots__ = ()
    counts_responses = True


class AioStreamUnaryMethod(AioClientMethod):
    """A recorded client-streaming method (requests from an iterator or ``write()`` are counted)."""

    __slots__ = ()
    counts_requests = True


class AioStreamStreamMethod(AioClientMethod):
    """A recorded bidi-streaming method (requests and responses are counted)."""

    __slots__ = ()
    counts_requests = True
    counts_responses = True
