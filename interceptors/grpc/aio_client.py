"""The grpc.aio client interceptor: one CLIENT span and one latency observation per RPC, all four shapes.

>>> channel = grpc.aio.insecure_channel(target, interceptors=hoptel.aio_client_interceptor(target=target))
...                                                                                   # doctest: +SKIP

grpc.aio's channel files each object of its ``interceptors`` under the first RPC shape it implements (an if/elif
over the four ``grpc.aio.*ClientInterceptor`` interfaces), so one object can only ever see one shape. hoptel's
interceptor is therefore a sequence of four single-shape interceptors sharing one state: pass it *as* the
sequence, or spread it into a list (``[*hoptel.aio_client_interceptor(), other]``), or use
:func:`aio_client_interceptors`, which returns the list. The sequence itself implements none of the four
interfaces, so put inside a list by mistake it makes the channel constructor raise a ``ValueError`` whose message
(the object's ``repr``) names these forms, instead of tracing unary-unary calls alone.
The CLIENT span is a child of the span current where the call was made (grpc runs interceptors in a task that
copies that context), injected into a copy of the call's metadata. The caller still gets grpc's call object,
awaitable or async-iterable, with ``cancel()``, ``add_done_callback()``, ``code()`` and the rest; response
streams are counted on the way through. The hop ends in the call's done callback, so nothing waits on an RPC
that never dispatched; cancelling a call (or closing its channel) ends the span CANCELLED. grpc.aio keeps an
in-flight call alive until its RPC ends, so a call that is merely dropped ends when its RPC does.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from grpc import aio

from hoptel.interceptors.enrich import GrpcEnrichment
from hoptel.interceptors.extra_labels import ExtraLabels
from hoptel.interceptors.grpc.aio_client_engine import (
    AioClientMethod,
    AioStreamStreamMethod,
    AioStreamUnaryMethod,
    AioUnaryStreamMethod,
    AioUnaryUnaryMethod,
)
from hoptel.interceptors.grpc.aio_client_response import AioClientResponseCapture, aio_client_response_capture
from hoptel.interceptors.grpc.capture import ClientStart, client_start
from hoptel.interceptors.grpc.names import BIDI_STREAM, CLIENT_STREAM, SERVER_STREAM, UNARY
from hoptel.interceptors.grpc.shared import MethodFilter, MethodTable, target_attributes
from hoptel.interceptors.hooks import GrpcCall, GrpcHook
from hoptel.interceptors.recorder import HopRecorder

if TYPE_CHECKING:
    from hoptel.telemetry import Telemetry

    _UnaryUnary = aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = aio.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = aio.UnaryUnaryClientInterceptor
    _UnaryStream = aio.UnaryStreamClientInterceptor
    _StreamUnary = aio.StreamUnaryClientInterceptor
    _StreamStream = aio.StreamStreamClientInterceptor

__all__ = ["AioClientInterceptor", "aio_client_interceptor", "aio_client_interceptors"]

_Continuation = Callable[[Any, Any], Any]  # returns an awaitable; grpc-stubs type it as the call itself
_Table = Mapping[Any, "AioClientMethod | None"]
_Tables = tuple[_Table, _Table, _Table, _Table]


class _AioClientCore:
    """The four intercept methods and the state they share: one engine method per method name and shape.

    A thin adapter over the aio client engine (``interceptors.grpc.aio_client_engine``), which records each call.
    """

    def __init__(self, start: ClientStart, tables: _Tables) -> None:
        self._start = start
        self._unary_unary, self._unary_stream, self._stream_unary, self._stream_stream = tables

    async def intercept_unary_unary(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a unary-unary RPC; returns grpc's call object."""
        method = self._unary_unary[client_call_details.method]
        if method is None:
            return await continuation(client_call_details, request)
        return await method.intercept(continuation, client_call_details, request)

    async def intercept_unary_stream(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a server-streaming RPC; returns the responses, counted (grpc keeps the call's methods)."""
        method = self._unary_stream[client_call_details.method]
        if method is None:
            return await continuation(client_call_details, request)
        return await method.intercept(continuation, client_call_details, request)

    async def intercept_stream_unary(
        self,
        continuation: _Continuation,
        client_call_details: Any,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        """Record a client-streaming RPC, counting requests as grpc sends them; returns grpc's call object."""
        method = self._stream_unary[client_call_details.method]
        if method is None:
            return await continuation(client_call_details, request_iterator)
        return await method.intercept(continuation, client_call_details, request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: _Continuation,
        client_call_details: Any,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        """Record a bidi-streaming RPC, counting requests and responses."""
        method = self._stream_stream[client_call_details.method]
        if method is None:
            return await continuation(client_call_details, request_iterator)
        return await method.intercept(continuation, client_call_details, request_iterator)


class _UnaryUnaryOnly(_AioClientCore, _UnaryUnary):
    """The unary-unary kind of an :class:`AioClientInterceptor` (shares its state)."""


class _UnaryStreamOnly(_AioClientCore, _UnaryStream):
    """The unary-stream kind of an :class:`AioClientInterceptor` (shares its state)."""


class _StreamUnaryOnly(_AioClientCore, _StreamUnary):
    """The stream-unary kind of an :class:`AioClientInterceptor` (shares its state)."""


class _StreamStreamOnly(_AioClientCore, _StreamStream):
    """The stream-stream kind of an :class:`AioClientInterceptor` (shares its state)."""


class _CapturingCore(_AioClientCore):
    """The intercept methods that also record response metadata (only built when it is asked for).

    Each hands the core a continuation that registers the capture's done callback on grpc's call before the engine
    registers the one that ends the hop; the start (wrapped by the capture) passes the hop's span along.
    """

    def __init__(self, start: ClientStart, tables: _Tables, capture: AioClientResponseCapture) -> None:
        super().__init__(start, tables)
        self._capture = capture

    async def intercept_unary_unary(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a unary-unary RPC and its response metadata."""
        watched = self._capture.aio_continuation(continuation)
        return await super().intercept_unary_unary(watched, client_call_details, request)

    async def intercept_unary_stream(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record a server-streaming RPC and its response metadata."""
        watched = self._capture.aio_continuation(continuation)
        return await super().intercept_unary_stream(watched, client_call_details, request)

    async def intercept_stream_unary(
        self,
        continuation: _Continuation,
        client_call_details: Any,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        """Record a client-streaming RPC and its response metadata."""
        watched = self._capture.aio_continuation(continuation)
        return await super().intercept_stream_unary(watched, client_call_details, request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: _Continuation,
        client_call_details: Any,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        """Record a bidi-streaming RPC and its response metadata."""
        watched = self._capture.aio_continuation(continuation)
        return await super().intercept_stream_stream(watched, client_call_details, request_iterator)


class _CapturingUnaryUnaryOnly(_CapturingCore, _UnaryUnary):
    """The unary-unary kind of a capturing :class:`AioClientInterceptor`."""


class _CapturingUnaryStreamOnly(_CapturingCore, _UnaryStream):
    """The unary-stream kind of a capturing :class:`AioClientInterceptor`."""


class _CapturingStreamUnaryOnly(_CapturingCore, _StreamUnary):
    """The stream-unary kind of a capturing :class:`AioClientInterceptor`."""


class _CapturingStreamStreamOnly(_CapturingCore, _StreamStream):
    """The stream-stream kind of a capturing :class:`AioClientInterceptor`."""


_LIST_FORMS = (
    "interceptors=hoptel.aio_client_interceptors(...) or [*hoptel.aio_client_interceptor(...), ...]; "
    "grpc.aio would file one object under a single RPC shape"
)


class AioClientInterceptor(Sequence["aio.ClientInterceptor"]):
    """Records every RPC of a grpc.aio channel; build it with :func:`aio_client_interceptor`.

    A sequence of four single-shape interceptors (unary-unary, unary-stream, stream-unary, stream-stream) sharing
    one state. Pass it *as* the channel's interceptor sequence (``interceptors=hoptel.aio_client_interceptor()``)
    or spread it into a list (``[*hoptel.aio_client_interceptor(), other]``). It implements none of grpc.aio's
    interceptor interfaces itself: grpc.aio files an object under the first shape it implements only
    (grpc/grpc#31442, still so in grpcio 1.85), so an object inside a list would trace unary-unary calls alone.
    Placed inside a list it is rejected by the channel constructor, with a message naming the forms above.
    """

    def __init__(
        self,
        recorder: HopRecorder,
        method_filter: MethodFilter | None,
        target: str | None,
        enrichment: GrpcEnrichment | None = None,
        capture: AioClientResponseCapture | None = None,
    ) -> None:
        start = client_start(recorder, enrichment)
        if capture is not None:  # one capture (and so one span hand-over) shared by the four kinds
            start = capture.start(start)
        peer = target_attributes(target) or None

        def table(rpc_type: str, shape: type[AioClientMethod]) -> _Table:
            return MethodTable(
                recorder, "client", rpc_type, method_filter, lambda route: shape(None, route, start, peer)
            )

        tables: _Tables = (
            table(UNARY, AioUnaryUnaryMethod),
            table(SERVER_STREAM, AioUnaryStreamMethod),
            table(CLIENT_STREAM, AioStreamUnaryMethod),
            table(BIDI_STREAM, AioStreamStreamMethod),
        )
        self._kinds: tuple[Any, ...]
        if capture is None:
            self._kinds = tuple(
                kind(start, tables) for kind in (_UnaryUnaryOnly, _UnaryStreamOnly, _StreamUnaryOnly, _StreamStreamOnly)
            )
        else:
            self._kinds = tuple(
                kind(start, tables, capture)
                for kind in (
                    _CapturingUnaryUnaryOnly,
                    _CapturingUnaryStreamOnly,
                    _CapturingStreamUnaryOnly,
                    _CapturingStreamStreamOnly,
                )
            )

    @overload
    def __getitem__(self, index: int) -> aio.ClientInterceptor: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[aio.ClientInterceptor]: ...

    def __getitem__(self, index: int | slice) -> aio.ClientInterceptor | Sequence[aio.ClientInterceptor]:
        """One single-shape interceptor (a slice: a tuple of them)."""
        return self._kinds[index]

    def __iter__(self) -> Iterator[aio.ClientInterceptor]:
        """The four single-shape interceptors, for a channel's ``interceptors=``."""
        return iter(self._kinds)

    def __len__(self) -> int:
        """Four: one interceptor per RPC shape."""
        return len(self._kinds)

    def __repr__(self) -> str:
        """Also what grpc.aio's ``ValueError`` shows when this sequence is put inside a list: the right forms."""
        return f"<hoptel aio client interceptor: a sequence of 4 per-shape interceptors; pass {_LIST_FORMS}>"


def aio_client_interceptor(
    telemetry: Telemetry | None = None,
    *,
    filter: MethodFilter | None = None,  # the documented keyword, as in the OTel instrumentations
    target: str | None = None,
    request_hook: GrpcHook | None = None,
    response_hook: GrpcHook | None = None,
    extra_labels: ExtraLabels[GrpcCall] | None = None,
) -> AioClientInterceptor:
    """One interceptor for all four RPC shapes of a grpc.aio channel.

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
        The interceptor, a sequence of four per-shape interceptors to pass as the channel's interceptor sequence:
        ``grpc.aio.insecure_channel(target, interceptors=hoptel.aio_client_interceptor(target=target))``, or
        spread into a list. Inside a list (``[hoptel.aio_client_interceptor()]``) the channel constructor raises
        ``ValueError`` naming these forms; see :class:`AioClientInterceptor`.
    """
    recorder = HopRecorder.of(telemetry)
    enrichment = GrpcEnrichment.build(recorder, "client", request_hook, response_hook, extra_labels)
    return AioClientInterceptor(recorder, filter, target, enrichment, aio_client_response_capture(recorder))


def aio_client_interceptors(
    telemetry: Telemetry | None = None,
    *,
    filter: MethodFilter | None = None,  # the documented keyword, as in the OTel instrumentations
    target: str | None = None,
    request_hook: GrpcHook | None = None,
    response_hook: GrpcHook | None = None,
    extra_labels: ExtraLabels[GrpcCall] | None = None,
) -> list[aio.ClientInterceptor]:
    """The list of interceptors for a grpc.aio channel, one per RPC shape (the OTel instrumentation's name).

    >>> channel = grpc.aio.insecure_channel(target, interceptors=hoptel.aio_client_interceptors(target=target))
    ...                                                                                   # doctest: +SKIP

    Takes the arguments of :func:`aio_client_interceptor`, with the same meaning, and returns its four per-shape
    interceptors as a list, ready to be extended with other interceptors (``[*hoptel.aio_client_interceptors(),
    other]``).

    Returns:
        Four interceptors sharing one state: unary-unary, unary-stream, stream-unary, stream-stream.
    """
    return list(
        aio_client_interceptor(
            telemetry,
            filter=filter,
            target=target,
            request_hook=request_hook,
            response_hook=response_hook,
            extra_labels=extra_labels,
        )
    )
