"""The sync gRPC client engine: what recording one call of one method does, for both sync client APIs.

``hoptel.instrument_channel`` and ``hoptel.client_interceptor`` record the same hops; this module is the one
place that says how. A :class:`ClientMethod` holds one method's route, the hop start and the peer attributes,
and :meth:`ClientMethod.run` records one call: start the hop (the recorder's or the hooks' start, chosen once in
``capture.client_start``), count a request stream, send with the injected metadata, and end the hop on the
outcome (blocking call), the call's termination (future), or the end of the response stream; a call that raises
ends it with its status. grpcio's call signature (request, timeout, metadata, credentials, wait_for_ready,
compression) is written once, in :func:`_entry`, the method every multicallable entry point is made from.

* The instrumented channel gives out :class:`UnaryUnaryMethod` & co. as grpcio multicallables (``multicallables``):
  ``__call__`` / ``with_call`` / ``future`` send through grpcio's own multicallable for the method.
* The interceptor keeps one :class:`ClientMethod` per method and shape and calls :meth:`ClientMethod.intercept`,
  which sends through grpcio's continuation instead (its outcome is a done call or a future: ended when it ends).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import grpc
from opentelemetry.util.types import AttributeValue

from hoptel.interceptors.grpc import bases
from hoptel.interceptors.grpc.capture import ClientStart
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.grpc.shared import ClientCallDetails
from hoptel.interceptors.grpc.status import finish_from_call
from hoptel.interceptors.grpc.streams import ClientResponses, SentCounter, watch_call
from hoptel.interceptors.recorder import GrpcHop

__all__ = [
    "ClientMethod",
    "StreamStreamMethod",
    "StreamUnaryMethod",
    "UnaryStreamMethod",
    "UnaryUnaryMethod",
    "multicallables",
]

_OK = grpc.StatusCode.OK
_INTERNAL = grpc.StatusCode.INTERNAL
Peer = Mapping[str, AttributeValue] | None

# How a call's hop ends, named after the grpcio multicallable method each mode sends through (the channel's).
_BLOCKING, _FUTURE, _STREAM = "with_call", "future", "__call__"


def _failed(hop: GrpcHop, error: Exception) -> None:
    """End ``hop`` for a call that raised: an RpcError's status (grpcio's errors are calls), else INTERNAL."""
    if isinstance(error, grpc.RpcError):
        finish_from_call(hop, error)
    else:
        hop.finish(_INTERNAL, f"{type(error).__qualname__}: {error}", error)


def _continue(
    continuation: Callable[[Any, Any], Any],
    method: str,
    request: Any,
    timeout: float | None,
    metadata: Any,
    *options: Any,
) -> Any:
    """Send through an interceptor's continuation: grpcio's call arguments as its ``ClientCallDetails``."""
    return continuation(ClientCallDetails(method, timeout, metadata, *options), request)


class ClientMethod:
    """One method of one RPC shape as a client records it: grpcio's multicallable, the route, the hop start.

    ``inner`` is grpcio's multicallable for the method (the instrumented channel's), or None (the interceptor's,
    which sends through each call's continuation).
    """

    __slots__ = ("_inner", "_peer", "_route", "_start")
    counts_requests: ClassVar[bool] = False  # request-streaming shapes count what grpcio sends
    intercepted: ClassVar[str] = _FUTURE  # how an interceptor's outcome ends the hop (a response stream: _STREAM)

    def __init__(self, inner: Any, route: GrpcRoute, start: ClientStart, peer: Peer) -> None:
        self._inner = inner
        self._route = route
        self._start = start
        self._peer = peer

    def run(self, mode: str, send: Callable[..., Any], request: Any, timeout: Any, metadata: Any, *options: Any) -> Any:
        """Record one call, sent by ``send(request, timeout, metadata, *options)``, ending its hop as ``mode`` says.

        ``options`` are grpcio's (credentials, wait_for_ready, compression).
        """
        started = self._start(self._route, metadata, self._peer)
        if started is None:
            return send(request, timeout, metadata, *options)
        hop, outgoing = started
        if self.counts_requests:
            request = SentCounter(iter(request), hop)
        try:
            outcome = send(request, timeout, outgoing, *options)
        except Exception as error:  # grpcio raises an RpcError for any status but OK (blocking mode)
            _failed(hop, error)
            raise
        if mode is _BLOCKING:
            hop.finish(_OK)
            return outcome
        if mode is _FUTURE:
            watch_call(outcome, hop)
            return outcome
        return ClientResponses(outcome, hop)

    def intercept(self, continuation: Callable[[Any, Any], Any], details: Any, request: Any) -> Any:
        """Record one call an interceptor sees, sent through grpcio's ``continuation``."""
        send = functools.partial(_continue, continuation, details.method)
        options = (details.credentials, details.wait_for_ready, getattr(details, "compression", None))
        return self.run(self.intercepted, send, request, details.timeout, details.metadata, *options)


def _entry(mode: str, doc: str, response_only: bool = False) -> Callable[..., Any]:
    """A multicallable entry point (``__call__``, ``with_call``, ``future``): grpcio's signature, written once."""

    def entry(
        self: ClientMethod,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        send = getattr(self._inner, mode)
        outcome = self.run(mode, send, request, timeout, metadata, credentials, wait_for_ready, compression)
        return outcome[0] if response_only else outcome

    entry.__doc__ = doc
    return entry


class UnaryUnaryMethod(ClientMethod, bases.UnaryUnaryMultiCallable):
    """A recorded unary-unary method."""

    __slots__ = ()
    __call__ = _entry(_BLOCKING, "The response, as grpcio returns it.", response_only=True)
    with_call = _entry(_BLOCKING, "``(response, call)``, as grpcio returns them.")
    future = _entry(_FUTURE, "The call as a ``grpc.Future``, as grpcio returns it.")


class UnaryStreamMethod(ClientMethod, bases.UnaryStreamMultiCallable):
    """A recorded server-streaming method; responses are counted."""

    __slots__ = ()
    intercepted = _STREAM
    __call__ = _entry(_STREAM, "The responses: grpcio's call, counting each response.")


class StreamUnaryMethod(ClientMethod, bases.StreamUnaryMultiCallable):
    """A recorded client-streaming method; requests are counted as grpcio sends them."""

    __slots__ = ()
    counts_requests = True
    __call__ = UnaryUnaryMethod.__call__
    with_call = UnaryUnaryMethod.with_call
    future = UnaryUnaryMethod.future


class StreamStreamMethod(ClientMethod, bases.StreamStreamMultiCallable):
    """A recorded bidi-streaming method; requests and responses are counted."""

    __slots__ = ()
    counts_requests = True
    intercepted = _STREAM
    __call__ = UnaryStreamMethod.__call__


multicallables = (UnaryUnaryMethod, UnaryStreamMethod, StreamUnaryMethod, StreamStreamMethod)
"""The four shapes' methods, in the order unary-unary, unary-stream, stream-unary, stream-stream."""
