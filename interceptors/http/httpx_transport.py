"""httpx transports that trace each request and observe its duration, and ``instrument_httpx`` for existing clients.

A transport is the one seam httpx offers for composition, so hoptel wraps one instead of patching anything::

    client = httpx.Client(transport=hoptel.HTTPTransport())                 # wraps httpx.HTTPTransport()
    client = httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(retries=2))
    hoptel.instrument_httpx(existing_client)                                # its transport and mounts, in place

Per request: a CLIENT span under the current context is started and injected into the request headers; the
response stream is wrapped so that the span ends and ``http_client_request_duration_seconds`` is observed when
the response is *closed* — after the last chunk of a streamed body, not when the headers arrive. A request that
fails (connection refused, timeout) ends the span with ``error.type`` set to the exception's class name and the
exception propagates unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from hoptel.interceptors.enrich import HttpClientEnrichment
from hoptel.interceptors.exclusions import httpx_traced
from hoptel.interceptors.extra_labels import ExtraLabels
from hoptel.interceptors.headers import REQUEST_HEADER_PREFIX, RESPONSE_HEADER_PREFIX, HeaderAllowList
from hoptel.interceptors.hooks import HttpCall, HttpHook
from hoptel.interceptors.recorder import HopRecorder, HttpClientHop
from hoptel.telemetry import Telemetry

__all__ = ["AsyncHTTPTransport", "HTTPTransport", "RequestFilter", "instrument_httpx"]

RequestFilter = Callable[[httpx.Request], bool]
"""Decides per request whether it is traced and measured; returning False sends it untouched."""

_ClientT = TypeVar("_ClientT", httpx.Client, httpx.AsyncClient)
_SyncT = TypeVar("_SyncT", bound="HTTPTransport")
_AsyncT = TypeVar("_AsyncT", bound="AsyncHTTPTransport")


class _ClientHops:
    """What both transports share: the recorder, the filter, the header allow-lists, hooks and extra labels."""

    __slots__ = (
        "_enrichment",
        "_request_allow",
        "_response_allow",
        "_start",
        "filter",
        "recorder",
        "request_headers",
        "response_headers",
    )

    def __init__(
        self,
        telemetry: Telemetry | None,
        filter: RequestFilter | None,
        record_request_headers: Iterable[str],
        record_response_headers: Iterable[str],
        request_hook: HttpHook | None = None,
        response_hook: HttpHook | None = None,
        extra_labels: ExtraLabels[HttpCall] | None = None,
    ) -> None:
        self.recorder = HopRecorder.of(telemetry)
        settings = self.recorder.telemetry.config.conventions
        # True: traced. The user's filter and the excluded URLs (OTEL_PYTHON_[HTTPX_]EXCLUDED_URLS) as one call.
        self.filter = httpx_traced(settings.httpx_excluded_urls, filter)
        sanitize = settings.sanitize_fields
        self.request_headers = HeaderAllowList(
            REQUEST_HEADER_PREFIX, record_request_headers, patterns=settings.http_client_request, sanitize=sanitize
        )
        self.response_headers = HeaderAllowList(
            RESPONSE_HEADER_PREFIX, record_response_headers, patterns=settings.http_client_response, sanitize=sanitize
        )
        # Asked per request: the allow-lists when they record anything, else None.
        self._request_allow = self.request_headers if self.request_headers else None
        self._response_allow = self.response_headers if self.response_headers else None
        self._enrichment = HttpClientEnrichment.build(self.recorder, request_hook, response_hook, extra_labels)
        self._start = self.recorder.start_http_client if self._enrichment is None else self._enrichment.start

    def start(self, request: httpx.Request) -> HttpClientHop | None:
        """Start the hop (context injected into ``request``), or None when the request is not instrumented."""
        if self.filter is not None and not self.filter(request):
            return None
        hop = self._start(request)
        request_headers = self._request_allow
        if request_headers is not None and hop is not None and hop.span.is_recording():
            hop.span.set_attributes(request_headers.from_headers(request.headers))
        return hop

    def responded(self, hop: HttpClientHop, response: httpx.Response) -> None:
        """Record the allowed response headers once the headers have arrived (and keep them for a hook)."""
        response_headers = self._response_allow
        if response_headers is not None and hop.span.is_recording():
            hop.span.set_attributes(response_headers.from_headers(response.headers))
        if self._enrichment is not None:
            self._enrichment.responded(hop, response)


class _SyncHopStream(httpx.SyncByteStream):
    """A response body that finishes its hop when it is closed (or fails while being read)."""

    __slots__ = ("_hop", "_status", "_stream")

    def __init__(self, stream: httpx.SyncByteStream, hop: HttpClientHop, status: int) -> None:
        self._stream = stream
        self._hop = hop
        self._status = status

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except Exception as exc:
            self._hop.finish(self._status, exc)
            raise

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._hop.finish(self._status)


class _AsyncHopStream(httpx.AsyncByteStream):
    """The async twin of :class:`_SyncHopStream`."""

    __slots__ = ("_hop", "_status", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, hop: HttpClientHop, status: int) -> None:
        self._stream = stream
        self._hop = hop
        self._status = status

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            self._hop.finish(self._status, exc)
            raise

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._hop.finish(self._status)


class HTTPTransport(httpx.BaseTransport):
    """An httpx transport that traces and measures every request it sends through another transport.

    Args:
        transport: The transport that does the I/O; default ``httpx.HTTPTransport(**transport_kwargs)``.
        telemetry: Whose tracer, propagator and registry to use; default the latest ``hoptel.setup()``'s.
        filter: Called with each ``httpx.Request``; False sends it without a span, metric or propagation. A URL
            that ``OTEL_PYTHON_HTTPX_EXCLUDED_URLS`` (else ``OTEL_PYTHON_EXCLUDED_URLS``) excludes is sent so too.
        record_request_headers: Request headers whose values go on the span as ``http.request.header.<name>``,
            besides those ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST`` names.
        record_response_headers: Response headers recorded as ``http.response.header.<name>`` (and those of
            ``..._CLIENT_RESPONSE``). ``authorization``, ``cookie`` and the other never-recorded headers never are.
        request_hook: ``hook(span, call)`` run before each request is sent (see ``interceptors.hooks``).
        response_hook: ``hook(span, call)`` run when the response is closed or the request failed.
        extra_labels: Extra metric labels taken from each request, capped (see ``interceptors.extra_labels``).
        **transport_kwargs: Passed to ``httpx.HTTPTransport`` when ``transport`` is not given (``verify``,
            ``retries``, ``limits``, ``http2``, ...).

    Raises:
        TypeError: ``transport_kwargs`` were given together with a ``transport``.

    Example:
        >>> client = httpx.Client(transport=HTTPTransport(retries=1))  # doctest: +SKIP
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        telemetry: Telemetry | None = None,
        filter: RequestFilter | None = None,
        record_request_headers: Iterable[str] = (),
        record_response_headers: Iterable[str] = (),
        request_hook: HttpHook | None = None,
        response_hook: HttpHook | None = None,
        extra_labels: ExtraLabels[HttpCall] | None = None,
        **transport_kwargs: Any,
    ) -> None:
        if transport is None:
            transport = httpx.HTTPTransport(**transport_kwargs)
        elif transport_kwargs:
            raise TypeError(f"pass either a transport or httpx.HTTPTransport arguments, not both: {transport_kwargs}")
        self._transport = transport
        self._hops = _ClientHops(
            telemetry,
            filter,
            record_request_headers,
            record_response_headers,
            request_hook,
            response_hook,
            extra_labels,
        )

    @property
    def transport(self) -> httpx.BaseTransport:
        """The wrapped transport."""
        return self._transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the wrapped transport inside a CLIENT span."""
        hop = self._hops.start(request)
        if hop is None:
            return self._transport.handle_request(request)
        try:
            response = self._transport.handle_request(request)
        except BaseException as exc:
            hop.finish(None, exc)
            raise
        self._hops.responded(hop, response)
        stream = response.stream
        if isinstance(stream, httpx.SyncByteStream) and not response.is_closed:
            response.stream = _SyncHopStream(stream, hop, response.status_code)
        else:  # a body this client cannot read or close, or one already read and closed: the hop ends now
            hop.finish(response.status_code)
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self._transport.close()

    def __enter__(self: _SyncT) -> _SyncT:
        self._transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._transport.__exit__(exc_type, exc_value, traceback)

    def __repr__(self) -> str:
        return f"hoptel.HTTPTransport({self._transport!r})"


class AsyncHTTPTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`HTTPTransport`, for ``httpx.AsyncClient``.

    Args:
        transport: The transport that does the I/O; default ``httpx.AsyncHTTPTransport(**transport_kwargs)``.
        telemetry: Whose tracer, propagator and registry to use; default the latest ``hoptel.setup()``'s.
        filter: Called with each ``httpx.Request``; False sends it without a span, metric or propagation. A URL
            that ``OTEL_PYTHON_HTTPX_EXCLUDED_URLS`` (else ``OTEL_PYTHON_EXCLUDED_URLS``) excludes is sent so too.
        record_request_headers: Request headers whose values go on the span as ``http.request.header.<name>``,
            besides those ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST`` names.
        record_response_headers: Response headers recorded as ``http.response.header.<name>`` (and those of
            ``..._CLIENT_RESPONSE``). ``authorization``, ``cookie`` and the other never-recorded headers never are.
        request_hook: ``hook(span, call)`` run before each request is sent (see ``interceptors.hooks``).
        response_hook: ``hook(span, call)`` run when the response is closed or the request failed.
        extra_labels: Extra metric labels taken from each request, capped (see ``interceptors.extra_labels``).
        **transport_kwargs: Passed to ``httpx.AsyncHTTPTransport`` when ``transport`` is not given.

    Raises:
        TypeError: ``transport_kwargs`` were given together with a ``transport``.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        telemetry: Telemetry | None = None,
        filter: RequestFilter | None = None,
        record_request_headers: Iterable[str] = (),
        record_response_headers: Iterable[str] = (),
        request_hook: HttpHook | None = None,
        response_hook: HttpHook | None = None,
        extra_labels: ExtraLabels[HttpCall] | None = None,
        **transport_kwargs: Any,
    ) -> None:
        if transport is None:
            transport = httpx.AsyncHTTPTransport(**transport_kwargs)
        elif transport_kwargs:
            raise TypeError(
                f"pass either a transport or httpx.AsyncHTTPTransport arguments, not both: {transport_kwargs}"
            )
        self._transport = transport
        self._hops = _ClientHops(
            telemetry,
            filter,
            record_request_headers,
            record_response_headers,
            request_hook,
            response_hook,
            extra_labels,
        )

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """The wrapped transport."""
        return self._transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the wrapped transport inside a CLIENT span."""
        hop = self._hops.start(request)
        if hop is None:
            return await self._transport.handle_async_request(request)
        try:
            response = await self._transport.handle_async_request(request)
        except BaseException as exc:
            hop.finish(None, exc)
            raise
        self._hops.responded(hop, response)
        stream = response.stream
        if isinstance(stream, httpx.AsyncByteStream) and not response.is_closed:
            response.stream = _AsyncHopStream(stream, hop, response.status_code)
        else:  # a body this client cannot read or close, or one already read and closed: the hop ends now
            hop.finish(response.status_code)
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._transport.aclose()

    async def __aenter__(self: _AsyncT) -> _AsyncT:
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self._transport.__aexit__(exc_type, exc_value, traceback)

    def __repr__(self) -> str:
        return f"hoptel.AsyncHTTPTransport({self._transport!r})"


def instrument_httpx(
    client: _ClientT,
    telemetry: Telemetry | None = None,
    *,
    filter: RequestFilter | None = None,
    record_request_headers: Iterable[str] = (),
    record_response_headers: Iterable[str] = (),
    request_hook: HttpHook | None = None,
    response_hook: HttpHook | None = None,
    extra_labels: ExtraLabels[HttpCall] | None = None,
) -> _ClientT:
    """Wrap an existing client's transport and every mounted transport in place; calling it again changes nothing.

    Transports that are already hoptel's are left alone, so a request never gets two spans, whether the client was
    built with ``transport=hoptel.HTTPTransport()`` or instrumented twice.

    Args:
        client: An ``httpx.Client`` or ``httpx.AsyncClient``.
        telemetry: Whose tracer, propagator and registry to use; default the latest ``hoptel.setup()``'s.
        filter: Called with each ``httpx.Request``; False sends it without a span, metric or propagation.
        record_request_headers: Request headers recorded on the span (see :class:`HTTPTransport`).
        record_response_headers: Response headers recorded on the span.
        request_hook: ``hook(span, call)`` run before each request is sent (see ``interceptors.hooks``).
        response_hook: ``hook(span, call)`` run when the response is closed or the request failed.
        extra_labels: Extra metric labels taken from each request, capped (see ``interceptors.extra_labels``).

    Returns:
        The same client.

    Raises:
        TypeError: ``client`` is neither an ``httpx.Client`` nor an ``httpx.AsyncClient``.
    """
    options: dict[str, Any] = {
        "telemetry": telemetry,
        "filter": filter,
        "record_request_headers": tuple(record_request_headers),
        "record_response_headers": tuple(record_response_headers),
        "request_hook": request_hook,
        "response_hook": response_hook,
        "extra_labels": extra_labels,
    }
    # httpx offers no public way to reach a client's transports after construction: ``_transport`` (the default
    # one) and ``_mounts`` (URL pattern -> transport, or None for "no proxy here") are private attributes that have
    # kept their names and shapes since httpx 0.18. Only the transports are replaced; the dict stays the same.
    if isinstance(client, httpx.Client):
        client._transport = _wrap_sync(client._transport, options)
        mounts: dict[Any, Any] = client._mounts
        for pattern, transport in list(mounts.items()):
            if transport is not None:
                mounts[pattern] = _wrap_sync(transport, options)
    elif isinstance(client, httpx.AsyncClient):
        client._transport = _wrap_async(client._transport, options)
        async_mounts: dict[Any, Any] = client._mounts
        for pattern, transport in list(async_mounts.items()):
            if transport is not None:
                async_mounts[pattern] = _wrap_async(transport, options)
    else:
        raise TypeError(f"instrument_httpx expects an httpx.Client or httpx.AsyncClient, got {type(client).__name__}")
    return client


def _wrap_sync(transport: httpx.BaseTransport, options: dict[str, Any]) -> httpx.BaseTransport:
    return transport if isinstance(transport, HTTPTransport) else HTTPTransport(transport, **options)


def _wrap_async(transport: httpx.AsyncBaseTransport, options: dict[str, Any]) -> httpx.AsyncBaseTransport:
    return transport if isinstance(transport, AsyncHTTPTransport) else AsyncHTTPTransport(transport, **options)
