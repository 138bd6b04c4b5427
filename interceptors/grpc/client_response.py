"""Response metadata on a sync gRPC client span, for unary-response RPCs, when it is asked for.

``HOPTEL_CAPTURE_GRPC_METADATA_CLIENT_RESPONSE`` names metadata keys (or whole-key regular expressions, ignoring
case) whose values go on the CLIENT span as ``rpc.grpc.response.metadata.<key>``: the server's initial metadata,
then its trailing metadata, sanitized like the request metadata; ``-bin`` values and never-recorded names are not.

Only unary-response shapes (unary-unary, stream-unary) of the sync client interceptor and of
``instrument_channel`` record it: the call is read once it is done (a blocking call's outcome, an RPC error, or a
future's termination callback, registered before the one that ends the hop), so nothing ever waits. A response
stream's end is seen first by the caller's thread, which ends the hop, while grpcio runs termination callbacks on
its own thread: a capture there could come after the span ended, so response streams record none.

With nothing configured :func:`client_response_capture` returns None, the interceptor and the channel are built
exactly as before, and nothing is added per RPC.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry.trace import Span

from hoptel.interceptors.headers import RESPONSE_METADATA_PREFIX, HeaderAllowList
from hoptel.interceptors.recorder import HopRecorder

__all__ = ["ClientResponseCapture", "client_response_allow_list", "client_response_capture"]


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


class _WatchedMulticallable:
    """grpcio's unary-response multicallable whose ``with_call`` and ``future`` report their call to a capture."""

    __slots__ = ("_capture", "_inner")

    def __init__(self, inner: Any, capture: ClientResponseCapture) -> None:
        self._inner = inner
        self._capture = capture

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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


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
