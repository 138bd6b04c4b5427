"""What the sync and aio server interceptors decide once per method: the handler cache and the wrapped handler.

Each twin only adapts shapes: it gets grpc's handler (called or awaited), looks it up in the cache (one dict lookup
and an identity check per call), and says how to wrap a behaviour of its flavour (``build``). Everything else is
here, once for both: the filter and the excluded services, the cap on cached methods and its lock (handler
threads of a sync server, or several aio servers' loops, may wrap concurrently), a method the server lacks
(recorded UNIMPLEMENTED under one ``unknown`` series, never cached), and the rebuilding of a handler around its
wrapped behaviour.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc

from hoptel.interceptors.enrich import GrpcEnrichment
from hoptel.interceptors.exclusions import excluding_services
from hoptel.interceptors.grpc.capture import ServerStart, server_start
from hoptel.interceptors.grpc.names import rpc_type
from hoptel.interceptors.grpc.response_capture import ResponseCapture, server_response_capture
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.grpc.shared import (
    HANDLER_FACTORIES,
    MAX_SERVER_METHODS,
    MethodFilter,
    method_name,
    traced,
    unknown_route,
)
from hoptel.interceptors.recorder import HopRecorder

__all__ = ["Build", "HandlerCache", "Pick", "rebuilt_handler"]

_UNIMPLEMENTED = grpc.StatusCode.UNIMPLEMENTED

Build = Callable[[ServerStart, GrpcRoute, Any, bool], Any]
"""``build(start, route, inner, request_streaming)``: the recording behaviour around a handler's ``inner``."""
Pick = Callable[[Any, bool], "Build | None"]
"""``pick(inner, response_streaming)``: how a flavour wraps ``inner``, or None to pass the handler through."""


def rebuilt_handler(
    recorder: HopRecorder,
    method: str,
    handler: grpc.RpcMethodHandler[Any, Any],
    start: ServerStart,
    pick: Pick,
    *,
    known: bool = True,
    capture: ResponseCapture | None = None,
) -> Any:
    """``handler`` rebuilt around its behaviour wrapped to record a hop (``pick`` None: ``handler`` as is).

    ``capture`` (when response metadata is captured) wraps the handler's own behaviour once more, here, once per
    method. A behaviour's ``experimental_thread_pool`` choice is kept.
    """
    request_streaming = bool(handler.request_streaming)
    response_streaming = bool(handler.response_streaming)
    attribute, factory = HANDLER_FACTORIES[(request_streaming, response_streaming)]
    inner = getattr(handler, attribute)
    build = pick(inner, response_streaming)
    if build is None:
        return handler
    route = recorder.grpc_route("server", rpc_type(request_streaming, response_streaming), method, known=known)
    pool = getattr(inner, "experimental_thread_pool", None)
    if capture is not None:
        inner = capture(inner, response_streaming)
    behavior = build(start, route, inner, request_streaming)
    if pool is not None:
        behavior.experimental_thread_pool = pool
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class HandlerCache:
    """A server interceptor's handlers: method -> (the handler grpc returned, the one returned for it).

    A flavour subclasses it with its ``pick``; its ``intercept_service`` looks the handler up in ``_handlers`` itself
    (the hot path, written out in both flavours: a shared method would cost a Python call per RPC, about 330
    instructions on the sync server's gate scenario) and calls :meth:`wrapped` on a miss. The identity check
    there notices a generic handler that hands out a new handler object.
    """

    def __init__(
        self, recorder: HopRecorder, method_filter: MethodFilter | None, enrichment: GrpcEnrichment | None
    ) -> None:
        self._recorder = recorder
        # The user's filter and the excluded services (health checks by default): asked once per method.
        self._filter = excluding_services(recorder.telemetry.config.conventions.grpc_excluded_services, method_filter)
        self._start = server_start(recorder, enrichment)
        self._capture = server_response_capture(recorder)  # None unless response metadata is captured
        self._handlers: dict[str, tuple[Any, Any]] = {}
        self._wrap_lock = threading.Lock()

    @staticmethod
    def pick(inner: Any, response_streaming: bool) -> Build | None:
        """How this flavour wraps a behaviour (None: pass the handler through untraced)."""
        raise NotImplementedError  # pragma: no cover - each flavour says

    def wrapped(self, details: grpc.HandlerCallDetails, handler: Any) -> Any:
        """What to return for ``handler`` (a cache miss): wrapped, kept unless past the cap, or as it is."""
        method = details.method
        if handler is None:  # grpc answers UNIMPLEMENTED; record it without caching the (possibly junk) name
            if traced(self._filter, method_name(method)):
                hop = self._start(unknown_route(self._recorder, method), details.invocation_metadata)
                hop.finish(_UNIMPLEMENTED, "Method not found!")
            return None
        with self._wrap_lock:  # handler threads wrap concurrently: keep the cap exact (first call of a method only)
            if len(self._handlers) < MAX_SERVER_METHODS or method in self._handlers:
                wrapped = self._rebuilt(method, handler) if traced(self._filter, method) else handler
                self._handlers[method] = (handler, wrapped)
                return wrapped
        # A catch-all handler answering any name: count it under ``unknown``, cache nothing.
        if not traced(self._filter, method):
            return handler
        return self._rebuilt(method, handler, known=False)

    def _rebuilt(self, method: str, handler: Any, known: bool = True) -> Any:
        return rebuilt_handler(
            self._recorder, method, handler, self._start, self.pick, known=known, capture=self._capture
        )
