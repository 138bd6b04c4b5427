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

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from grpc import aio

from hoptel.interceptors.grpc import bases
from hoptel.interceptors.grpc.aio_client_engine import (
    AioClientMethod,
    AioStreamStreamMethod,
    AioStreamUnaryMethod,
    AioUnaryStreamMethod,
    AioUnaryUnaryMethod,
)
from hoptel.interceptors.grpc.aio_client_response import AioClientResponseCapture, aio_client_response_capture
from hoptel.interceptors.grpc.capture import ClientStart
from hoptel.interceptors.grpc.shared import ClientRecording, client_recording, engine_tables

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from hoptel.interceptors.grpc.shared import GrpcClientOptions
    from hoptel.telemetry import Telemetry

__all__ = ["AioClientInterceptor", "aio_client_interceptor", "aio_client_interceptors"]

_Continuation = Callable[[Any, Any], Any]  # returns an awaitable; grpc-stubs type it as the call itself


class _AioClientCore:
    """A single-shape interceptor: the engine method for each method name of its shape records the call.

    A thin adapter over the aio client engine (``interceptors.grpc.aio_client_engine``). grpc.aio calls only the
    ``intercept_*`` method of the shape a kind implements, so all four names are the one :meth:`_intercept`.
    """

    def __init__(self, start: ClientStart, table: Mapping[Any, AioClientMethod | None]) -> None:
        self._start = start
        self._table = table

    async def _intercept(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record the RPC (a request stream's requests, a response stream's responses counted)."""
        method = self._table[client_call_details.method]
        if method is None:
            return await continuation(client_call_details, request)
        return await method.intercept(continuation, client_call_details, request)

    intercept_unary_unary = intercept_unary_stream = intercept_stream_unary = intercept_stream_stream = _intercept


class _CapturingCore(_AioClientCore):
    """The single-shape interceptor that also records response metadata (only built when it is asked for).

    It hands the engine a continuation that registers the capture's done callback on grpc's call before the engine
    registers the one that ends the hop; the start (wrapped by the capture) passes the hop's span along.
    """

    def __init__(
        self, start: ClientStart, table: Mapping[Any, AioClientMethod | None], capture: AioClientResponseCapture
    ) -> None:
        super().__init__(start, table)
        self._capture = capture

    async def _intercept(self, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        """Record the RPC and its response metadata."""
        watched = self._capture.aio_continuation(continuation)
        return await super()._intercept(watched, client_call_details, request)

    intercept_unary_unary = intercept_unary_stream = intercept_stream_unary = intercept_stream_stream = _intercept


def _kinds(core: type[_AioClientCore]) -> tuple[type[Any], ...]:
    """``core`` as each of grpc.aio's four client interceptor interfaces (one class per shape, named for it)."""
    interfaces = (
        bases.AioUnaryUnaryClientInterceptor,
        bases.AioUnaryStreamClientInterceptor,
        bases.AioStreamUnaryClientInterceptor,
        bases.AioStreamStreamClientInterceptor,
    )
    return tuple(
        type(
            f"{core.__name__}[{interface.__name__}]",
            (core, interface),
            {"__module__": __name__, "__doc__": f"The {interface.__name__} of an :class:`AioClientInterceptor`."},
        )
        for interface in interfaces
    )


_KINDS = _kinds(_AioClientCore)
_UnaryUnaryOnly, _UnaryStreamOnly, _StreamUnaryOnly, _StreamStreamOnly = _KINDS
_CAPTURING_KINDS = _kinds(_CapturingCore)


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

    def __init__(self, recording: ClientRecording[AioClientResponseCapture]) -> None:
        shapes = (AioUnaryUnaryMethod, AioUnaryStreamMethod, AioStreamUnaryMethod, AioStreamStreamMethod)
        tables = engine_tables(recording, shapes)
        start, capture = recording.start, recording.capture  # one capture (one span hand-over) for the four kinds
        kinds, extra = (_KINDS, ()) if capture is None else (_CAPTURING_KINDS, (capture,))
        self._kinds = tuple(kind(start, table, *extra) for kind, table in zip(kinds, tables, strict=True))

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
    **options: Unpack[GrpcClientOptions],
) -> AioClientInterceptor:
    """One interceptor for all four RPC shapes of a grpc.aio channel.

    Takes the arguments of :func:`~hoptel.interceptors.grpc.client.client_interceptor`, with the same meaning.

    Returns:
        The interceptor, a sequence of four per-shape interceptors to pass as the channel's interceptor sequence:
        ``grpc.aio.insecure_channel(target, interceptors=hoptel.aio_client_interceptor(target=target))``, or
        spread into a list. Inside a list (``[hoptel.aio_client_interceptor()]``) the channel constructor raises
        ``ValueError`` naming these forms; see :class:`AioClientInterceptor`.
    """
    return AioClientInterceptor(client_recording(telemetry, options, aio_client_response_capture))


def aio_client_interceptors(
    telemetry: Telemetry | None = None,
    **options: Unpack[GrpcClientOptions],
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
    return list(aio_client_interceptor(telemetry, **options))
