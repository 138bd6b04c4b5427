"""Response metadata on a grpc.aio client span, all four RPC shapes, when it is asked for.

``HOPTEL_CAPTURE_GRPC_METADATA_CLIENT_RESPONSE`` names metadata keys (or whole-key regular expressions, ignoring
case) whose values go on the CLIENT span as ``rpc.grpc.response.metadata.<key>``: the server's initial metadata,
then its trailing metadata, sanitized like the request metadata; ``-bin`` values and never-recorded names are not.

A grpc.aio client hop ends from the call's done callback (``aio_streams.watch_aio_call``), for every shape. The
capturing variants of :func:`~hoptel.aio_client_interceptor` and :func:`~hoptel.instrument_aio_channel` register
one more done callback on grpc's call, right after starting it and *before* the one that ends the hop (grpc runs
done callbacks in the order they were added), so the metadata is on the span before it ends. By then grpc has the
call's status and initial metadata (a call that ends before any initial metadata gets an empty one), so the
public ``initial_metadata()`` / ``trailing_metadata()`` coroutines complete without suspending: they are run to
completion there, never awaited, and nothing waits. A coroutine that would suspend (another interceptor's call
object that cannot say yet) is closed and records nothing. An inner interceptor that awaited the call and raised
its ``AioRpcError`` hands the metadata over on the error itself.

With nothing configured :func:`aio_client_response_capture` returns None and the interceptor and the channel are
built exactly as before: nothing is added per RPC.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from grpc import aio
from opentelemetry.trace import Span

from hoptel.interceptors.grpc.aio_streams import completed
from hoptel.interceptors.grpc.client_response import (
    ClientResponseCapture,
    WatchedMulticallable,
    client_response_allow_list,
)
from hoptel.interceptors.recorder import HopRecorder

__all__ = ["AioClientResponseCapture", "aio_client_response_capture"]

_log = logging.getLogger("hoptel.interceptors")
_Continuation = Callable[[Any, Any], Any]


class AioClientResponseCapture(ClientResponseCapture):
    """Hands the span a capturing start began to the call it precedes, and records the done call's metadata.

    The start and the call it precedes run one right after the other on one thread, with no ``await`` between
    them (the interceptor's coroutine runs its continuation's first step synchronously; the channel calls grpc's
    multicallable directly): the span is handed over through the thread-local of :class:`ClientResponseCapture`.
    """

    __slots__ = ()

    def record_done(self, span: Span, call: Any) -> None:
        """Record a done grpc.aio call's initial and trailing metadata on ``span`` (the done-callback signature)."""
        try:
            if not span.is_recording():
                return
            initial = completed(call.initial_metadata())
            trailing = completed(call.trailing_metadata())
            pairs = [*(initial or ()), *(trailing or ())]
            if pairs:
                span.set_attributes(self._capture(pairs))
        except Exception:  # never into grpc's done callbacks
            _log.exception("hoptel: recording gRPC response metadata failed")

    def watch_aio(self, span: Span | None, call: Any) -> None:
        """Record ``call``'s metadata when it is done: now if it is, else from a done callback registered now."""
        if span is None:
            return
        if call.done():
            self.record_done(span, call)
        else:
            call.add_done_callback(functools.partial(self.record_done, span))

    def record_error(self, span: Span | None, error: aio.AioRpcError) -> None:
        """Record the metadata an ``AioRpcError`` carries (an inner interceptor awaited the call and it failed)."""
        if span is not None:
            self.record(span, error)

    def aio_continuation(self, continuation: _Continuation) -> _Continuation:
        """An aio interceptor's ``continuation``, watching the call it returns for the hop its start just began."""

        async def watched(details: Any, request: Any) -> Any:
            span = self.taken_span()
            try:
                call = await continuation(details, request)
            except aio.AioRpcError as error:
                self.record_error(span, error)
                raise
            self.watch_aio(span, call)
            return call

        return watched

    def aio_multicallable(self, inner: Any) -> Any:
        """An aio channel's multicallable, watching each call for the hop its start just began."""
        return _WatchedAioMulticallable(inner, self)


class _WatchedAioMulticallable(WatchedMulticallable[AioClientResponseCapture]):
    """grpc.aio's multicallable whose calls report to a capture, ahead of the done callback that ends the hop."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        capture = self._capture
        span = capture.taken_span()
        call = self._inner(*args, **kwargs)
        capture.watch_aio(span, call)
        return call


def aio_client_response_capture(recorder: HopRecorder) -> AioClientResponseCapture | None:
    """The aio client's response metadata capture, or None when ``..._CLIENT_RESPONSE`` names nothing."""
    allow = client_response_allow_list(recorder)
    return AioClientResponseCapture(allow) if allow else None
