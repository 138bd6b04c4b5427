"""``ASGIMiddleware``: a pure ASGI middleware that traces and measures every HTTP request an app serves.

    app = hoptel.ASGIMiddleware(app)                    # any ASGI app
    starlette_app.add_middleware(hoptel.ASGIMiddleware)  # Starlette / FastAPI

Per ``http`` request: the trace context is extracted from the request headers, a SERVER span is started and made
the current context for the whole app call (the handler, a streamed body, background tasks), the status is taken
from ``http.response.start``, and when the app returns the span ends and ``http_server_request_duration_seconds``
is observed. An exception from the app ends the span as a 500 with the exception recorded, then propagates.
``websocket`` scopes are passed through untouched, and so are ``lifespan`` scopes, except that when the app reports
``lifespan.shutdown.complete`` the Telemetry's spans and log records are flushed first (bounded by
``LIFESPAN_FLUSH_S``): a server may end its process with a signal right after its graceful shutdown, without
``atexit`` (uvicorn raises the signal it caught again once the app has shut down).

The route template (``http.route`` and the ``http_route`` label) is read from the scope after the app ran, where
routers leave it: Starlette's ``scope["route"].path`` (``/items/{item_id}``), or ``scope["route"]`` /
``scope["path_format"]`` as a string. Without one the label is ``""``; the raw path never becomes a label.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from hoptel.interceptors.enrich import EnrichedHttpServerHop, HttpServerEnrichment
from hoptel.interceptors.exclusions import asgi_traced
from hoptel.interceptors.headers import HeaderAllowList
from hoptel.interceptors.http.shared import check_options, recorded_headers
from hoptel.interceptors.recorder import HopRecorder
from hoptel.otel_internals import attach_context, detach_context
from hoptel.telemetry import Telemetry

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from hoptel.interceptors.http.shared import HttpOptions

__all__ = ["LIFESPAN_FLUSH_S", "ASGIApp", "ASGIMiddleware", "PathFilter", "route_template"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application (the same shape Starlette's ``starlette.types.ASGIApp`` has)."""

PathFilter = Callable[[str], bool]
"""Decides per request, from the URL path, whether it is traced and measured (False: passed through)."""

# Status reported when the app returned without starting a response: what servers (uvicorn) then send.
_NO_RESPONSE_STATUS = 500

LIFESPAN_FLUSH_S = 5.0
"""The longest the flush at ``lifespan.shutdown.complete`` holds the server's shutdown."""


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The route template a router left in ``scope``, or None when there is none.

    >>> route_template({"path_format": "/items/{item_id}"})
    '/items/{item_id}'
    >>> route_template({"path": "/items/42"}) is None
    True
    """
    route = scope.get("route")
    if route is not None:
        template = route if isinstance(route, str) else getattr(route, "path", None)
        if isinstance(template, str) and template:
            return template
    path_format = scope.get("path_format")
    if isinstance(path_format, str) and path_format:
        return path_format
    return None


@dataclass(eq=False, slots=True)
class _SendWatchingStatus:
    """The app's ``send``: notes the status (and response headers) of ``http.response.start``, then sends.

    Not a coroutine of its own: it returns the server's ``send(message)`` for the app to await (one coroutine less
    per message).
    """

    _send: Send
    _span: Any
    _response_headers: HeaderAllowList | None
    _capture: Callable[[Any], None] | None
    status: int = field(default=_NO_RESPONSE_STATUS, init=False)

    def __call__(self, message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self._response_headers is not None:
                self._span.set_attributes(self._response_headers.from_pairs(message.get("headers") or ()))
            if self._capture is not None:
                self._capture(message.get("headers") or ())
        return self._send(message)


class ASGIMiddleware:
    """Trace and measure each HTTP request an ASGI app serves.

    Args:
        app: The ASGI application to wrap.
        telemetry: Whose tracer, propagator and registry to use; default the latest ``hoptel.setup()``'s.
        filter: Called with each request's URL path; False passes the request through without a span or metric
            (health checks). A URL that ``OTEL_PYTHON_ASGI_EXCLUDED_URLS`` (else ``OTEL_PYTHON_EXCLUDED_URLS``)
            excludes is passed through so too.
        **options: ``record_request_headers``, ``record_response_headers``, ``request_hook``, ``response_hook``,
            ``extra_labels``: see :class:`~hoptel.interceptors.http.shared.HttpOptions`.

    Raises:
        TypeError: A keyword that is none of these.

    Example:
        >>> app.add_middleware(ASGIMiddleware, filter=lambda path: path != "/healthz")  # doctest: +SKIP
    """

    def __init__(
        self,
        app: ASGIApp,
        telemetry: Telemetry | None = None,
        *,
        filter: PathFilter | None = None,
        **options: Unpack[HttpOptions],
    ) -> None:
        check_options("ASGIMiddleware", options)
        self.app = app
        self._recorder = HopRecorder.of(telemetry)
        self._enrichment = HttpServerEnrichment.build(
            self._recorder, options.get("request_hook"), options.get("response_hook"), options.get("extra_labels")
        )
        self._start = self._recorder.start_http_server if self._enrichment is None else self._enrichment.start
        settings = self._recorder.telemetry.config.conventions
        # True: traced. The user's path filter and the excluded URLs (OTEL_PYTHON_[ASGI_]EXCLUDED_URLS) as one call.
        self._filter = asgi_traced(settings.asgi_excluded_urls, filter)
        # Asked per request: whether there is anything to record (None: nothing), and whether to instrument at all.
        self._request_allow, self._response_allow = recorded_headers(
            settings, "server", options.get("record_request_headers", ()), options.get("record_response_headers", ())
        )
        self._enabled = self._recorder.enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection; only ``http`` scopes are instrumented."""
        if scope["type"] != "http" or not self._enabled or (self._filter is not None and not self._filter(scope)):
            if scope["type"] == "lifespan":
                send = self._flushing_at_shutdown(send)
            await self.app(scope, receive, send)
            return
        hop = self._start(scope)
        span = hop.span
        recording = span.is_recording()
        request_headers = self._request_allow
        if recording and request_headers is not None:
            span.set_attributes(request_headers.from_pairs(scope.get("headers") or ()))
        response_headers = self._response_allow if recording else None
        capture = None if self._enrichment is None else cast(EnrichedHttpServerHop, hop).capture_response_headers
        send_watching_status = _SendWatchingStatus(send, span, response_headers, capture)

        # Attached here, in the coroutine that runs the app, so the handler and every task the app starts (a
        # streamed body, background tasks) inherit the server span through contextvars.
        token = attach_context(hop.context)
        try:
            await self.app(scope, receive, send_watching_status)
        except BaseException as exc:
            hop.finish(500, route_template(scope), exc)
            raise
        else:
            hop.finish(send_watching_status.status, route_template(scope))
        finally:
            detach_context(token)

    def _flushing_at_shutdown(self, send: Send) -> Send:
        """``send`` for a lifespan scope: flush spans and logs before the app's shutdown is reported complete."""
        telemetry = self._recorder.telemetry

        async def send_flushing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                telemetry.flush(LIFESPAN_FLUSH_S)  # blocking but bounded; the server is shutting down
            await send(message)

        return send_flushing
