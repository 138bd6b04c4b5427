"""Response metadata on a gRPC server span: the initial and trailing metadata the handler sent, when asked for.

``HOPTEL_CAPTURE_GRPC_METADATA_SERVER_RESPONSE`` names metadata keys (or regular expressions matched against the
whole key, ignoring case) whose values go on the SERVER span as ``rpc.grpc.response.metadata.<key>``, a list of
strings, the key in lower case; keys that ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS`` matches are
recorded as ``[REDACTED]``, binary (``-bin``) values and the never-recorded headers never are.

A server records the initial metadata the handler sent (``context.send_initial_metadata``) followed by the trailing
metadata (one list per key, as a client does): what the handler set with ``context.set_trailing_metadata``, read
back from the servicer context (``trailing_metadata()``, sync and aio), or what it passed to grpc.aio's
``context.abort(code, details, trailing_metadata)``. grpcio keeps no copy of the initial metadata, so the handler
is handed a stand-in servicer context (``noted_context``) that delegates everything to the one it was given and
notes what those calls sent; the span records it when the handler returns, raises or aborts, or its response
stream ends.

With nothing configured :func:`server_response_capture` returns None and handlers are wrapped as before: they get
grpc's context and nothing is added per RPC. Configured, each traced method's handler is wrapped once more, at the
time it is first wrapped, and each RPC builds one stand-in context.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from opentelemetry.trace import Span, get_current_span

from hoptel.interceptors.grpc.noted_context import AioNotingServicerContext, NotingServicerContext
from hoptel.interceptors.headers import RESPONSE_METADATA_PREFIX, HeaderAllowList
from hoptel.interceptors.recorder import HopRecorder

__all__ = ["ResponseCapture", "response_allow_list", "server_response_capture"]

ResponseCapture = Callable[[Any, bool], Any]
"""``capture(behavior, response_streaming)``: the handler's behaviour, recording the metadata it sends."""


def response_allow_list(recorder: HopRecorder) -> HeaderAllowList:
    """The response metadata keys a server records, from the configuration."""
    settings = recorder.telemetry.config.conventions
    patterns = settings.grpc_server_response
    return HeaderAllowList(RESPONSE_METADATA_PREFIX, (), patterns=patterns, sanitize=settings.sanitize_fields)


def server_response_capture(recorder: HopRecorder) -> ResponseCapture | None:
    """How a server wraps a handler's behaviour to record its response metadata; None when nothing is captured.

    The wrapped behaviour runs where the hoptel wrapper calls the handler, with the SERVER span current: the span
    is taken from the context then, the handler gets a stand-in context noting the metadata it sends, and the
    metadata is recorded before the hop ends (a span that already ended, as after a cancellation, records nothing).
    """
    allow = response_allow_list(recorder)
    if not allow:
        return None
    capture = allow.from_text_pairs

    def record(span: Span, noted: NotingServicerContext | AioNotingServicerContext) -> None:
        if not span.is_recording():
            return
        try:
            metadata = noted.response_metadata()
        except Exception:  # a context wrapped by another interceptor that cannot say
            return
        if metadata:
            span.set_attributes(capture(metadata))

    def unary(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def behavior(request: Any, context: Any) -> Any:
            span = get_current_span()
            noted = NotingServicerContext(context)
            try:
                return inner(request, noted)
            finally:
                record(span, noted)

        return behavior

    def stream(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Iterator[Any]]:
        def responses(span: Span, iterator: Any, noted: NotingServicerContext) -> Iterator[Any]:
            try:
                yield from iterator
            finally:
                record(span, noted)

        def behavior(request: Any, context: Any) -> Iterator[Any]:
            noted = NotingServicerContext(context)
            return responses(get_current_span(), inner(request, noted), noted)

        return behavior

    def aio_unary(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        async def behavior(request: Any, context: Any) -> Any:
            span = get_current_span()
            noted = AioNotingServicerContext(context)
            try:
                return await inner(request, noted)
            finally:
                record(span, noted)

        return behavior

    def aio_generator(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def behavior(request: Any, context: Any) -> AsyncIterator[Any]:
            span = get_current_span()  # the first step runs with the span attached (see grpc_aio_server)
            noted = AioNotingServicerContext(context)
            try:
                async for response in inner(request, noted):
                    yield response
            finally:
                record(span, noted)

        return behavior

    def wrap(inner: Any, response_streaming: bool) -> Any:
        if inspect.isasyncgenfunction(inner):
            return aio_generator(inner)
        if inspect.iscoroutinefunction(inner):
            return aio_unary(inner)
        return stream(inner) if response_streaming else unary(inner)

    return wrap
