"""A sync gRPC channel that records every RPC without grpcio's interceptor machinery.

>>> channel = hoptel.instrument_channel(grpc.insecure_channel(target), target=target)     # doctest: +SKIP

The hops are those of ``grpc.intercept_channel(channel, hoptel.client_interceptor(target=target))``: one CLIENT
span and one latency observation per RPC, all four shapes, the same options. What differs is the path of a
call: each method's route is resolved once, when the stub asks the channel for the method, and a call goes
straight to grpcio's own multicallable with the injected metadata. grpcio's ``intercept_channel`` instead builds
a ``ClientCallDetails``, a continuation closure and a new multicallable on every call; skipping that is most of
what this saves. A filtered-out method gets grpcio's multicallable itself: no cost at all.

The caller gets what grpcio returns: the response (``__call__``), ``(response, call)`` (``with_call``), the
future (``future()``), or for a response stream a ``grpc.Call`` iterator that counts responses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import grpc
from opentelemetry.util.types import AttributeValue

from hoptel.interceptors.enrich import GrpcEnrichment
from hoptel.interceptors.extra_labels import ExtraLabels
from hoptel.interceptors.grpc.capture import client_start
from hoptel.interceptors.grpc.client_response import ClientResponseCapture, client_response_capture
from hoptel.interceptors.grpc.names import CLIENT_STREAM, UNARY
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.grpc.shared import ClientRoutes, MethodFilter, RecordingMethods
from hoptel.interceptors.grpc.status import finish_from_call
from hoptel.interceptors.grpc.streams import ClientResponses, SentCounter, watch_call
from hoptel.interceptors.hooks import GrpcCall, GrpcHook
from hoptel.interceptors.recorder import GrpcHop, HopRecorder

if TYPE_CHECKING:
    from hoptel.telemetry import Telemetry

    _UnaryUnaryBase = grpc.UnaryUnaryMultiCallable[Any, Any]
    _UnaryStreamBase = grpc.UnaryStreamMultiCallable[Any, Any]
    _StreamUnaryBase = grpc.StreamUnaryMultiCallable[Any, Any]
    _StreamStreamBase = grpc.StreamStreamMultiCallable[Any, Any]
else:
    _UnaryUnaryBase = grpc.UnaryUnaryMultiCallable
    _UnaryStreamBase = grpc.UnaryStreamMultiCallable
    _StreamUnaryBase = grpc.StreamUnaryMultiCallable
    _StreamStreamBase = grpc.StreamStreamMultiCallable

__all__ = ["InstrumentedChannel", "instrument_channel"]

_OK = grpc.StatusCode.OK
_INTERNAL = grpc.StatusCode.INTERNAL
_Start = Callable[..., "tuple[GrpcHop, Any] | None"]


def _failed(hop: GrpcHop, error: Exception) -> None:
    """End ``hop`` for a call that raised: an RpcError's status (grpcio's errors are calls), else INTERNAL."""
    if isinstance(error, grpc.RpcError):
        finish_from_call(hop, error)
    else:
        hop.finish(_INTERNAL, f"{type(error).__qualname__}: {error}", error)


_BLOCKING, _FUTURE, _STREAM = "with_call", "future", "__call__"  # grpcio's multicallable method each mode calls


class _Method:
    """What every wrapped multicallable holds: grpcio's multicallable, the route, how to start a hop.

    Each public method has grpcio's signature and hands its arguments to ``_run``, which starts the hop and makes
    the call in one of three modes: blocking (``with_call``), ``future``, or response stream.
    """

    __slots__ = ("_inner", "_peer", "_route", "_start")
    counts_requests: ClassVar[bool] = False  # request-streaming shapes count what grpcio sends

    def __init__(self, inner: Any, route: GrpcRoute, start: _Start, peer: Mapping[str, AttributeValue] | None) -> None:
        self._inner = inner
        self._route = route
        self._start = start
        self._peer = peer

    def _run(self, mode: str, requests: Any, timeout: Any, metadata: Any, *options: Any) -> Any:
        """Make the call in ``mode``, recording it; ``options`` are grpcio's (credentials, wait_for_ready, ...)."""
        call_inner = getattr(self._inner, mode)
        started = self._start(self._route, metadata, self._peer)
        if started is None:
            return call_inner(requests, timeout, metadata, *options)
        hop, outgoing = started
        if self.counts_requests:
            requests = SentCounter(requests, hop)
        try:
            outcome = call_inner(requests, timeout, outgoing, *options)
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


class _UnaryUnary(_Method, _UnaryUnaryBase):
    """A recorded unary-unary method."""

    __slots__ = ()

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """The response, as grpcio returns it."""
        return self._run(_BLOCKING, request, timeout, metadata, credentials, wait_for_ready, compression)[0]

    def with_call(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """``(response, call)``, as grpcio returns them."""
        return self._run(_BLOCKING, request, timeout, metadata, credentials, wait_for_ready, compression)

    def future(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """The call as a ``grpc.Future``, as grpcio returns it."""
        return self._run(_FUTURE, request, timeout, metadata, credentials, wait_for_ready, compression)


class _UnaryStream(_Method, _UnaryStreamBase):
    """A recorded server-streaming method."""

    __slots__ = ()

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """The responses: grpcio's call, counting each response."""
        return self._run(_STREAM, request, timeout, metadata, credentials, wait_for_ready, compression)


class _StreamUnary(_Method, _StreamUnaryBase):
    """A recorded client-streaming method; requests are counted as grpcio sends them."""

    __slots__ = ()
    counts_requests = True

    def __call__(
        self,
        request_iterator: Iterator[Any],
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """The response, as grpcio returns it."""
        return self._run(_BLOCKING, request_iterator, timeout, metadata, credentials, wait_for_ready, compression)[0]

    def with_call(
        self,
        request_iterator: Iterator[Any],
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """``(response, call)``, as grpcio returns them."""
        return self._run(_BLOCKING, request_iterator, timeout, metadata, credentials, wait_for_ready, compression)

    def future(
        self,
        request_iterator: Iterator[Any],
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """The call as a ``grpc.Future``, as grpcio returns it."""
        return self._run(_FUTURE, request_iterator, timeout, metadata, credentials, wait_for_ready, compression)


class _StreamStream(_Method, _StreamStreamBase):
    """A recorded bidi-streaming method; requests and responses are counted."""

    __slots__ = ()
    counts_requests = True

    def __call__(
        self,
        request_iterator: Iterator[Any],
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """The responses: grpcio's call, counting each response."""
        return self._run(_STREAM, request_iterator, timeout, metadata, credentials, wait_for_ready, compression)


class InstrumentedChannel(RecordingMethods, grpc.Channel):
    """A ``grpc.Channel`` recording every RPC made through it; build it with :func:`instrument_channel`.

    Connectivity (``subscribe``, ``unsubscribe``), ``close()`` and the context manager act on the wrapped channel.
    """

    wrappers = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)

    def __init__(
        self,
        channel: grpc.Channel,
        recorder: HopRecorder,
        start: _Start,
        method_filter: MethodFilter | None,
        target: str | None,
    ) -> None:
        self._channel = (
            channel  # the name grpcio's own intercepted channel uses (hoptel.interceptors.auto.zerocode follows it)
        )
        self._routes = ClientRoutes(recorder, start, method_filter, target)

    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False) -> None:
        """See ``grpc.Channel.subscribe``."""
        self._channel.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        """See ``grpc.Channel.unsubscribe``."""
        self._channel.unsubscribe(callback)

    def close(self) -> None:
        """Close the wrapped channel."""
        self._channel.close()

    def __enter__(self) -> InstrumentedChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._channel.close()


class _CapturingChannel(InstrumentedChannel):
    """An instrumented channel recording response metadata of unary-response RPCs (built only when asked for)."""

    def __init__(
        self,
        channel: grpc.Channel,
        recorder: HopRecorder,
        start: _Start,
        method_filter: MethodFilter | None,
        target: str | None,
        capture: ClientResponseCapture,
    ) -> None:
        super().__init__(channel, recorder, capture.start(start), method_filter, target)
        self._capture = capture

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A recording unary-unary multicallable, recording response metadata too."""
        inner = self._capture.multicallable(self._channel.unary_unary(method, *args, **kwargs))
        return self._routes.wrap(UNARY, method, inner, self.wrappers[0])

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A recording stream-unary multicallable, recording response metadata too."""
        inner = self._capture.multicallable(self._channel.stream_unary(method, *args, **kwargs))
        return self._routes.wrap(CLIENT_STREAM, method, inner, self.wrappers[2])


def instrument_channel(
    channel: grpc.Channel,
    telemetry: Telemetry | None = None,
    *,
    filter: MethodFilter | None = None,  # the documented keyword, as in the OTel instrumentations
    target: str | None = None,
    request_hook: GrpcHook | None = None,
    response_hook: GrpcHook | None = None,
    extra_labels: ExtraLabels[GrpcCall] | None = None,
) -> InstrumentedChannel:
    """``channel``, recording every RPC: the hops of :func:`~hoptel.client_interceptor` at a lower cost per call.

    Args:
        channel: A sync channel (``grpc.insecure_channel``, ``grpc.secure_channel``, an intercepted channel).
        telemetry: Where spans and metrics go (default: the latest ``hoptel.setup()``'s). Resolved once, here.
        filter: Called once per method with its full name; False skips tracing and metrics for that method.
            Methods of excluded services (``grpc.health.v1.Health``, ``OTEL_PYTHON_GRPC_EXCLUDED_SERVICES``) are
            skipped without asking it.
        target: The channel's target (``host:port``); sets ``server.address`` / ``server.port`` on spans.
        request_hook: ``hook(span, call)`` run when a call starts, before it is sent (see ``interceptors.hooks``).
        response_hook: ``hook(span, call)`` run when a call ends (a stream: when it ends), with ``call.code`` set.
        extra_labels: Extra metric labels taken from each call, capped (see ``interceptors.extra_labels``).

    Returns:
        A ``grpc.Channel`` to build stubs on: ``Stub(hoptel.instrument_channel(grpc.insecure_channel(target)))``.
        Under ``hoptel.instrument()`` a zero-code channel steps aside, so each RPC is recorded once.
    """
    from hoptel.interceptors.auto.zerocode import (
        step_aside,  # the zero-code machinery only if channels are instrumented
    )

    recorder = HopRecorder.of(telemetry)
    enrichment = GrpcEnrichment.build(recorder, "client", request_hook, response_hook, extra_labels)
    start = client_start(recorder, enrichment)
    capture = client_response_capture(recorder)
    if capture is not None:
        return _CapturingChannel(step_aside(channel), recorder, start, filter, target, capture)
    return InstrumentedChannel(step_aside(channel), recorder, start, filter, target)
