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

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hoptel.interceptors.grpc import bases
from hoptel.interceptors.grpc.client_engine import (
    ClientMethod,
    StreamStreamMethod,
    StreamUnaryMethod,
    UnaryStreamMethod,
    UnaryUnaryMethod,
)
from hoptel.interceptors.grpc.client_response import ClientResponseCapture, client_response_capture
from hoptel.interceptors.grpc.shared import ClientRecording, client_recording, engine_tables

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from hoptel.interceptors.grpc.shared import GrpcClientOptions
    from hoptel.telemetry import Telemetry

__all__ = ["ClientInterceptor", "client_interceptor"]

_Continuation = Callable[[Any, Any], Any]


class _Untraced(dict[Any, None]):
    """The route table of an interceptor that passes every call through (see ``pass_through``)."""

    def __missing__(self, method: Any) -> None:
        return None


_Wrap = Callable[[ClientResponseCapture, _Continuation], _Continuation]


def _intercepting(shape: int, doc: str, capturing: _Wrap | None = None) -> Callable[..., Any]:
    """An ``intercept_*`` method: the engine method for the call's method name and ``shape`` records the call.

    ``capturing``: how the continuation is first wrapped to record response metadata (a method of
    ``client_response.ClientResponseCapture``: ``continuation`` for a unary response, ``stream_continuation``).
    """

    def intercept(self: ClientInterceptor, continuation: _Continuation, client_call_details: Any, request: Any) -> Any:
        method = self._tables[shape][client_call_details.method]
        if method is None:
            return continuation(client_call_details, request)
        if capturing is not None:
            continuation = capturing(self._capture, continuation)
        return method.intercept(continuation, client_call_details, request)

    intercept.__doc__ = doc
    return intercept


_UNARY_UNARY = "Record a unary-unary RPC; returns grpcio's outcome (blocking call) or future unchanged."
_STREAM_UNARY = "Record a client-streaming RPC, counting requests as grpcio sends them."


class ClientInterceptor(
    bases.UnaryUnaryClientInterceptor,
    bases.UnaryStreamClientInterceptor,
    bases.StreamUnaryClientInterceptor,
    bases.StreamStreamClientInterceptor,
):
    """Records every RPC of an intercepted channel; build it with :func:`client_interceptor`.

    A thin adapter over the client engine (``interceptors.grpc.client_engine``): one engine method per method
    name and shape, built on its first call, records each call through grpcio's continuation.
    """

    _capture: ClientResponseCapture  # set when there is one: the capturing interceptor reads it per call

    def __init__(self, recording: ClientRecording[ClientResponseCapture]) -> None:
        self._start = recording.start
        if recording.capture is not None:
            self._capture = recording.capture
        shapes = (UnaryUnaryMethod, UnaryStreamMethod, StreamUnaryMethod, StreamStreamMethod)
        self._tables: tuple[Mapping[Any, ClientMethod | None], ...] = engine_tables(recording, shapes)

    intercept_unary_unary = _intercepting(0, _UNARY_UNARY)
    intercept_unary_stream = _intercepting(1, "Record a server-streaming RPC; returns a response iterator that counts.")
    intercept_stream_unary = _intercepting(2, _STREAM_UNARY)
    intercept_stream_stream = _intercepting(3, "Record a bidi-streaming RPC, counting requests and responses.")

    def pass_through(self) -> None:
        """Stop recording: from now on every call goes through untouched (another hoptel interceptor records it)."""
        self._tables = (_Untraced(),) * 4


class _CapturingClientInterceptor(ClientInterceptor):
    """The interceptor recording the response metadata of every RPC (only built when it is asked for)."""

    _unary = ClientResponseCapture.continuation
    _stream = ClientResponseCapture.stream_continuation
    intercept_unary_unary = _intercepting(0, _UNARY_UNARY + " Records response metadata.", _unary)
    intercept_unary_stream = _intercepting(1, "Record a server-streaming RPC and its response metadata.", _stream)
    intercept_stream_unary = _intercepting(2, _STREAM_UNARY + " Records response metadata.", _unary)
    intercept_stream_stream = _intercepting(3, "Record a bidi-streaming RPC and its response metadata.", _stream)


def client_interceptor(
    telemetry: Telemetry | None = None,
    **options: Unpack[GrpcClientOptions],
) -> ClientInterceptor:
    """One interceptor for all four RPC shapes of a sync channel, for ``grpc.intercept_channel``.

    Args:
        telemetry: Where spans and metrics go (default: the latest ``hoptel.setup()``'s). Resolved once, here.
        **options: ``filter``, ``target``, ``request_hook``, ``response_hook``, ``extra_labels``: see
            :class:`~hoptel.interceptors.grpc.shared.GrpcClientOptions`.

    Returns:
        The interceptor: ``grpc.intercept_channel(channel, hoptel.client_interceptor(target=target))``.
    """
    recording = client_recording(telemetry, options, client_response_capture)
    kind = ClientInterceptor if recording.capture is None else _CapturingClientInterceptor
    return kind(recording)
