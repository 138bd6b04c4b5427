"""Response metadata on a sync gRPC client span, when it is asked for.

``HOPTEL_CAPTURE_GRPC_METADATA_CLIENT_RESPONSE`` names metadata keys (or whole-key regular expressions, ignoring
case) whose values go on the CLIENT span as ``rpc.grpc.response.metadata.<key>``: the server's initial metadata,
then its trailing metadata, sanitized like the request metadata; ``-bin`` values and never-recorded names are not.
(grpc.aio clients: ``aio_client_response``, built on this.)

Unary-response shapes (unary-unary, stream-unary) of the sync client interceptor and of ``instrument_channel``
record it: the call is read once it is done (a blocking call's outcome, an RPC error, or a future's termination
callback, registered before the one that ends the hop), so nothing ever waits.

Response streams (unary-stream, stream-stream): their end is seen first by the caller's thread, which ends the hop,
while grpcio runs termination callbacks on its own thread, so a termination callback alone could come after the
span ended. :meth:`ClientResponseCapture.stream_continuation` / :meth:`~ClientResponseCapture.stream_multicallable`
therefore hand the hop's ``streams.ClientResponses`` a stand-in for grpcio's response iterator
(:class:`CapturedResponses`) that records both when the caller's thread sees the end (StopIteration, the RPC
error, ``cancel()``) and from a termination callback registered ahead of the one that ends the hop: whichever
comes first records, each before it ends the hop. A capturing client or channel uses them for its
response-streaming shapes.

With nothing configured :func:`client_response_capture` returns None, the interceptor and the channel are built
exactly as before, and nothing is added per RPC.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import grpc
from opentelemetry.trace import Span

from hoptel.forwarding import Forwarding
from hoptel.interceptors.headers import RESPONSE_METADATA_PREFIX, HeaderAllowList
from hoptel.interceptors.recorder import HopRecorder

__all__ = [
    "CapturedResponses",
    "ClientResponseCapture",
    "WatchedMulticallable",
    "client_response_allow_list",
    "client_response_capture",
]

_Capture = TypeVar("_Capture")


class ClientResponseCapture:
    """Remembers the span a capturing start began and records a done call's response metadata on it.

    The start and the call it precedes run on one thread, one right after the other: the span is handed over
    through a thread-local, never across threads.
    """

    __slots__ = ("_capture", "_pending")

    def __init__(self, allow: HeaderAllowList) -> None:
        self._capture = allow.from_text_pairs
        self._pending = threading.local()

    def start(self, start: Callable[..., Any]) -> Callable[..., Any]:
        """``start`` (a client start method), remembering the span of each hop it begins."""
        pending = self._pending

        def start_remembering(*args: Any) -> Any:
            started = start(*args)
            pending.span = None if started is None else started[0].span
            return started

        return start_remembering

    def taken_span(self) -> Span | None:
        """The span the last start on this thread began (None: not recorded), forgotten once taken."""
        pending = self._pending
        span: Span | None = getattr(pending, "span", None)
        pending.span = None
        return span

    def record(self, span: Span | None, call: Any) -> None:
        """Record a done call's initial and trailing metadata on ``span`` (never waits: ``call`` is done)."""
        if span is None or not span.is_recording():
            return
        try:
            pairs = [*(call.initial_metadata() or ()), *(call.trailing_metadata() or ())]
        except Exception:  # an object from another interceptor that cannot say
            return
        if pairs:
            span.set_attributes(self._capture(pairs))

    def watch(self, span: Span | None, call: Any) -> None:
        """Record ``call``'s metadata now if it is done, else from its termination callback (registered now)."""
        if span is None:
            return
        if call.done():
            self.record(span, call)
            return
        ref = weakref.ref(call)  # grpcio's callback must not keep an abandoned call alive

        def recorded() -> None:
            done = ref()
            if done is not None:
                self.record(span, done)

        try:
            if not call.add_callback(recorded):
                self.record(span, call)
        except (AttributeError, TypeError):  # not a grpcio call: its done callback receives it
            call.add_done_callback(lambda done: self.record(span, done))

    def continuation(self, continuation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """An interceptor's ``continuation``, watching the call it returns for the hop its start just began."""

        def watched(details: Any, request: Any) -> Any:
            span = self.taken_span()
            call = continuation(details, request)
            self.watch(span, call)
            return call

        return watched

    def multicallable(self, inner: Any) -> Any:
        """A channel's unary-response multicallable, watching each call for the hop its start just began."""
        return _WatchedMulticallable(inner, self)

    def responses(self, span: Span | None, call: Any) -> Any:
        """``call`` (a sync response stream), recording its metadata on ``span`` when it ends; ``call`` if None.

        The stand-in is what the hop's ``streams.ClientResponses`` then wraps: it records before the caller's
        thread sees the end of the stream (StopIteration or the RpcError), before ``cancel()`` returns, and from a
        termination callback registered now, ahead of the one that ends the hop; whichever comes first records.
        """
        if span is None:
            return call
        return CapturedResponses(call, _StreamRecord(self, span, call))

    def stream_continuation(self, continuation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """An interceptor's response-stream ``continuation``, recording the stream's metadata when it ends."""

        def watched(details: Any, request: Any) -> Any:
            span = self.taken_span()
            return self.responses(span, continuation(details, request))

        return watched

    def stream_multicallable(self, inner: Any) -> Any:
        """A channel's response-streaming multicallable, recording each stream's metadata when it ends."""
        return _WatchedStreamMulticallable(inner, self)


class _StreamRecord:
    """Records one response stream's metadata once, the first time it is known to have ended (any thread).

    Also its nullary RPC-termination callback (``add_callback``), holding grpcio's call only weakly so that an
    abandoned stream is still collected (and cancelled) by grpcio.
    """

    __slots__ = ("_call", "_capture", "_span")

    def __init__(self, capture: ClientResponseCapture, span: Span, call: Any) -> None:
        self._capture = capture
        self._span: Span | None = span
        self._call = weakref.ref(call)

    def ended(self, call: Any) -> None:
        """Record ``call``'s metadata if it has terminated (never waits) and nothing was recorded yet."""
        span = self._span
        if span is None:
            return
        try:
            if not call.done():  # not terminated: reading initial metadata now could wait
                return
        except Exception:  # an object from another interceptor that cannot say
            return
        self._span = None  # two threads may both get here: they record the same values
        self._capture.record(span, call)

    def __call__(self) -> None:
        call = self._call()
        if call is not None:
            self.ended(call)

    def watch(self, call: Any) -> None:
        """Register the termination callback on grpcio's ``call`` (now, if it has already terminated)."""
        try:
            registered = call.add_callback(self)
        except (AttributeError, TypeError):  # not a grpcio call: the stream's end records
            return
        if not registered:
            self.ended(call)


class CapturedResponses(Forwarding):
    """grpcio's response iterator (a ``grpc.Call`` and ``grpc.Future``), recording its metadata when it ends.

    Everything but iteration and ``cancel()`` is grpcio's object's (``__getattr__``).
    """

    __slots__ = ("__weakref__", "_call", "_record")
    _forwarded_to = "_call"

    def __init__(self, call: Any, record: _StreamRecord) -> None:
        self._call = call
        self._record = record
        record.watch(call)

    def __iter__(self) -> CapturedResponses:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except Exception:  # StopIteration or the RpcError: the stream has ended
            self._record.ended(self._call)
            raise

    def next(self) -> Any:
        """Python 2 style alias grpcio keeps."""
        return self.__next__()

    def cancel(self) -> bool:
        """Cancel the RPC, recording what metadata it had."""
        cancelled = bool(self._call.cancel())
        self._record.ended(self._call)
        return cancelled

    def __repr__(self) -> str:
        return f"<hoptel CapturedResponses of {self._call!r}>"


class WatchedMulticallable(Forwarding, Generic[_Capture]):
    """A grpc multicallable (``inner``) whose calls report to ``capture``; its other attributes are ``inner``'s."""

    __slots__ = ("_capture", "_inner")
    _forwarded_to = "_inner"

    def __init__(self, inner: Any, capture: _Capture) -> None:
        self._inner = inner
        self._capture = capture


class _WatchedStreamMulticallable(WatchedMulticallable[ClientResponseCapture]):
    """grpcio's response-streaming multicallable whose streams record their metadata when they end."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        capture = self._capture
        span = capture.taken_span()
        return capture.responses(span, self._inner(*args, **kwargs))


class _WatchedMulticallable(WatchedMulticallable[ClientResponseCapture]):
    """grpcio's unary-response multicallable whose ``with_call`` and ``future`` report their call to a capture."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.with_call(*args, **kwargs)[0]

    def with_call(self, *args: Any, **kwargs: Any) -> Any:
        capture = self._capture
        span = capture.taken_span()
        try:
            response, call = self._inner.with_call(*args, **kwargs)
        except grpc.RpcError as error:  # grpcio's errors are done calls
            capture.watch(span, error)
            raise
        capture.watch(span, call)
        return response, call

    def future(self, *args: Any, **kwargs: Any) -> Any:
        capture = self._capture
        span = capture.taken_span()
        call = self._inner.future(*args, **kwargs)
        capture.watch(span, call)
        return call


def client_response_allow_list(recorder: HopRecorder) -> HeaderAllowList:
    """The response metadata keys a client records, from the configuration (sync and aio clients alike)."""
    settings = recorder.telemetry.config.conventions
    return HeaderAllowList(
        RESPONSE_METADATA_PREFIX, (), patterns=settings.grpc_client_response, sanitize=settings.sanitize_fields
    )


def client_response_capture(recorder: HopRecorder) -> ClientResponseCapture | None:
    """The client's response metadata capture, or None when ``..._CLIENT_RESPONSE`` names nothing."""
    allow = client_response_allow_list(recorder)
    return ClientResponseCapture(allow) if allow else None
