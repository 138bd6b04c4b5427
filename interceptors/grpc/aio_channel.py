"""A grpc.aio channel that records every RPC without grpc.aio's interceptor machinery.

>>> channel = hoptel.instrument_aio_channel(grpc.aio.insecure_channel(target), target=target)   # doctest: +SKIP

The hops are those of ``grpc.aio.insecure_channel(target, interceptors=hoptel.aio_client_interceptor(...))``: one
CLIENT span and one latency observation per RPC, all four shapes, the same options. What differs is the path of
a call. grpc.aio runs interceptors in a task of their own per call, with a ``ClientCallDetails`` and a
continuation; here the method's route is resolved once, when the stub asks the channel for the method, and a
call goes straight to grpc's multicallable with the injected metadata, in the caller's task (so the CLIENT span
is a child of the span current there). The hop ends in the call's done callback, as with the interceptor.

The caller gets grpc's own call object for unary-response calls; a streamed side is counted through a thin
proxy that is still a ``grpc.aio`` call (``read()``, ``write()``, ``done_writing()``, async iteration, ``cancel()``,
``code()`` and the rest are the real call's).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from grpc.aio import EOF  # type: ignore[attr-defined]  # grpc-stubs 1.53 lacks grpc.aio.EOF

from hoptel.interceptors.grpc import aio_client_engine as engine
from hoptel.interceptors.grpc import bases
from hoptel.interceptors.grpc.aio_client import AioClientInterceptor
from hoptel.interceptors.grpc.aio_client_response import AioClientResponseCapture, aio_client_response_capture
from hoptel.interceptors.grpc.aio_streams import count_responses
from hoptel.interceptors.grpc.bases import passthrough
from hoptel.interceptors.grpc.shared import RecordingMethods, client_recording
from hoptel.interceptors.grpc.streams import count
from hoptel.interceptors.recorder import GrpcHop

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from hoptel.interceptors.grpc.shared import GrpcClientOptions
    from hoptel.telemetry import Telemetry

__all__ = ["InstrumentedAioChannel", "instrument_aio_channel"]

_INTERNAL = grpc.StatusCode.INTERNAL
_Start = Callable[..., "tuple[GrpcHop, Any] | None"]


class _CountedCall:
    """Delegates to grpc's call; messages read, iterated or written through it are counted on the hop."""

    __slots__ = ("_call", "_hop")

    def __init__(self, call: Any, hop: GrpcHop) -> None:
        self._call = call
        self._hop = hop

    def __aiter__(self) -> AsyncIterator[Any]:
        return count_responses(self._call, self._hop)

    async def read(self) -> Any:
        """Read one response; counted unless it is ``grpc.aio.EOF``."""
        message = await self._call.read()
        if message is not EOF:
            count(self._hop, "received")
        return message

    async def write(self, request: Any) -> None:
        """Write one request and count it."""
        await self._call.write(request)
        count(self._hop, "sent")

    def __await__(self) -> Generator[Any, None, Any]:
        return self._call.__await__()  # type: ignore[no-any-return]

    # The call's own methods.
    cancel = cancelled = done = passthrough("_call", "grpc.aio.Call", bool)
    time_remaining = add_done_callback = passthrough("_call", "grpc.aio.Call")
    initial_metadata = trailing_metadata = code = wait_for_connection = passthrough(
        "_call", "grpc.aio.Call", awaited=True
    )
    details = passthrough("_call", "grpc.aio.Call", str, awaited=True)
    done_writing = passthrough("_call", "grpc.aio.StreamStreamCall", awaited=True)

    def __getattr__(self, name: str) -> Any:  # anything a newer grpc adds
        if name in _CountedCall.__slots__:
            raise AttributeError(name)
        return getattr(self._call, name)


class _CountedUnaryStream(_CountedCall, bases.AioUnaryStreamCall):
    """A server-streaming call whose responses are counted."""

    __slots__ = ()


class _CountedStreamUnary(_CountedCall, bases.AioStreamUnaryCall):
    """A client-streaming call whose written requests are counted."""

    __slots__ = ()


class _CountedStreamStream(_CountedCall, bases.AioStreamStreamCall):
    """A bidi-streaming call whose responses and written requests are counted."""

    __slots__ = ()


def _call(
    self: engine.AioClientMethod,
    request: Any = None,
    timeout: float | None = None,
    metadata: Any = None,
    **options: Any,
) -> Any:
    """grpc.aio's multicallable call (``request`` is the iterator of a request-streaming shape, None to write)."""
    options["timeout"] = timeout
    return self.run(request, metadata, options)


class _UnaryUnary(engine.AioUnaryUnaryMethod, bases.AioUnaryUnaryMultiCallable):
    """A recorded unary-unary method."""

    __slots__ = ()
    __call__ = _call  # type: ignore[assignment]  # grpc.aio's signature (grpc-stubs differ)


class _UnaryStream(engine.AioUnaryStreamMethod, bases.AioUnaryStreamMultiCallable):
    """A recorded server-streaming method; responses are counted."""

    __slots__ = ()
    proxy = _CountedUnaryStream
    __call__ = _call  # type: ignore[assignment]  # grpc.aio's signature (grpc-stubs differ)


class _StreamUnary(engine.AioStreamUnaryMethod, bases.AioStreamUnaryMultiCallable):
    """A recorded client-streaming method (requests from an iterator or ``write()`` are counted)."""

    __slots__ = ()
    proxy = _CountedStreamUnary
    __call__ = _call  # type: ignore[assignment]  # grpc.aio's signature (grpc-stubs differ)


class _StreamStream(engine.AioStreamStreamMethod, bases.AioStreamStreamMultiCallable):
    """A recorded bidi-streaming method (requests and responses are counted)."""

    __slots__ = ()
    proxy = _CountedStreamStream
    __call__ = _call  # type: ignore[assignment]  # grpc.aio's signature (grpc-stubs differ)


class InstrumentedAioChannel(RecordingMethods, aio.Channel):
    """A ``grpc.aio.Channel`` recording every RPC made through it; build it with :func:`instrument_aio_channel`.

    Connectivity, ``close()`` and ``async with`` act on the wrapped channel.
    """

    wrappers = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)

    # The wrapped channel's own methods.
    close = wait_for_state_change = channel_ready = passthrough("_channel", "grpc.aio.Channel", awaited=True)
    get_state = passthrough("_channel", "grpc.aio.Channel")

    async def __aenter__(self) -> InstrumentedAioChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._channel.close(None)


class _CapturingAioChannel(InstrumentedAioChannel):
    """An instrumented aio channel recording response metadata of every RPC (built only when asked for).

    grpc's multicallables are wrapped so that each call gets the capture's done callback before the one that ends
    the hop; the start (wrapped by the capture) passes the hop's span along.
    """

    _capture: AioClientResponseCapture

    def _multicallable(self, index: int, inner: Any) -> Any:
        """Grpc's multicallables report their calls to the capture."""
        return self._capture.aio_multicallable(inner)


def _records_already(channel: aio.Channel) -> bool:
    """Whether ``channel`` already has hoptel's aio client interceptor (given by hand or by ``instrument()``).

    Reads grpc.aio's interceptor list (private; absent in another implementation means "no").
    """
    interceptors = getattr(channel, "_unary_unary_interceptors", None) or ()
    try:
        return any(type(interceptor).__module__ == AioClientInterceptor.__module__ for interceptor in interceptors)
    except TypeError:
        return False


def instrument_aio_channel(
    channel: aio.Channel,
    telemetry: Telemetry | None = None,
    **options: Unpack[GrpcClientOptions],
) -> aio.Channel:
    """``channel``, recording every RPC: the hops of :func:`~hoptel.aio_client_interceptor` at a lower cost per call.

    Args:
        channel: A grpc.aio channel (``grpc.aio.insecure_channel``, ``grpc.aio.secure_channel``).
        telemetry: Where spans and metrics go (default: the latest ``hoptel.setup()``'s). Resolved once, here.
        **options: ``filter``, ``target``, ``request_hook``, ``response_hook``, ``extra_labels``: see
            :class:`~hoptel.interceptors.grpc.shared.GrpcClientOptions`.

    Returns:
        A ``grpc.aio.Channel`` to build stubs on. A channel that already records its RPCs (hoptel's aio client
        interceptor is on it, e.g. under ``hoptel.instrument()``) is returned as it is, so each RPC is recorded once.
    """
    if _records_already(channel):
        return channel
    recording = client_recording(telemetry, options, aio_client_response_capture)
    kind = InstrumentedAioChannel if recording.capture is None else _CapturingAioChannel
    return kind(channel, recording)
