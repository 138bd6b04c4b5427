"""Response metadata on a gRPC server span: what the handler set as trailing metadata, when it is asked for.

``HOPTEL_CAPTURE_GRPC_METADATA_SERVER_RESPONSE`` names metadata keys (or regular expressions matched against the
whole key, ignoring case) whose values go on the SERVER span as ``rpc.grpc.response.metadata.<key>``, a list of
strings, the key in lower case; keys that ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS`` matches are
recorded as ``[REDACTED]``, binary (``-bin``) values and the never-recorded headers never are.

A server records the trailing metadata the handler set (``context.set_trailing_metadata``), read back from the
servicer context (``trailing_metadata()``, sync and aio) when the handler returns, raises or its response stream
ends. The initial metadata a handler sends (``send_initial_metadata``) is not recorded: grpcio keeps no copy of
it, and catching it would mean handing the handler a stand-in servicer context.

With nothing configured :func:`server_response_capture` returns None and handlers are wrapped as before: nothing
is added per RPC. Configured, each traced method's handler is wrapped once more, at the time it is first wrapped.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from opentelemetry.trace import Span, get_current_span

from hoptel.interceptors.headers import RESPONSE_METADATA_PREFIX, HeaderAllowList
from hoptel.interceptors.recorder import HopRecorder

__all__ = ["ResponseCapture", "response_allow_list", "server_response_capture"]

ResponseCapture = Callable[[Any, bool], Any]
"""``capture(behavior, response_streaming)``: the handler's behaviour, recording its trailing metadata."""


def response_allow_list(recorder: HopRecorder) -> HeaderAllowList:
    """The response metadata keys a server records, from the configuration."""
    settings = recorder.telemetry.config.conventions
    patterns = settings.grpc_server_response
    return HeaderAllowList(RESPONSE_METADATA_PREFIX, (), patterns=patterns, sanitize=settings.sanitize_fields)


def server_response_capture(recorder: HopRecorder) -> ResponseCapture | None:
    """How a server wraps a handler's behaviour to record its trailing metadata; None when nothing is captured.

    The wrapped behaviour runs where the hoptel wrapper calls the handler, with the SERVER span current: the span
    is taken from the context then, and the metadata recorded before the hop ends (a span that already ended, as
    after a cancellation, records nothing).
    """
    allow = response_allow_list(recorder)
    if not allow:
        return None
    capture = allow.from_text_pairs

    def record(span: Span, context: Any) -> None:
        if not span.is_recording():
            return
        try:
            metadata = context.trailing_metadata()
        except Exception:  # a context wrapped by another interceptor that cannot say
            return
        if metadata:
            span.set_attributes(capture(metadata))

    def unary(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def behavior(request: Any, context: Any) -> Any:
            span = get_current_span()
            try:
                return inner(request, context)
            finally:
                record(span, context)

        return behavior

    def stream(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Iterator[Any]]:
        def responses(span: Span, iterator: Any, context: Any) -> Iterator[Any]:
            try:
                yield from iterator
            finally:
                record(span, context)

        def behavior(request: Any, context: Any) -> Iterator[Any]:
            return responses(get_current_span(), inner(request, context), context)

        return behavior

    def aio_unary(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        async def behavior(request: Any, context: Any) -> Any:
            span = get_current_span()
            try:
                return await inner(request, context)
            finally:
                record(span, context)

        return behavior

    def aio_generator(inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def behavior(request: Any, context: Any) -> AsyncIterator[Any]:
            span = get_current_span()  # the first step runs with the span attached (see grpc_aio_server)
            try:
                async for response in inner(request, context):
                    yield response
            finally:
                record(span, context)

        return behavior

    def wrap(inner: Any, response_streaming: bool) -> Any:
        if inspect.isasyncgenfunction(inner):
            return aio_generator(inner)
        if inspect.iscoroutinefunction(inner):
            return aio_unary(inner)
        return stream(inner) if response_streaming else unary(inner)

    return wrap
