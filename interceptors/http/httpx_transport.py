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
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

import httpx

from hoptel.interceptors.enrich import HttpClientEnrichment
from hoptel.interceptors.exclusions import httpx_traced
from hoptel.interceptors.extra_labels import ExtraLabels
from hoptel.interceptors.headers import HeaderAllowList
from hoptel.interceptors.hooks import HttpCall, HttpHook
from hoptel.interceptors.http.shared import check_options, recorded_headers
from hoptel.interceptors.recorder import HopRecorder, HttpClientHop
from hoptel.telemetry import Telemetry

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from hoptel.interceptors.http.shared import HttpOptions

__all__ = ["AsyncHTTPTransport", "HTTPTransport", "RequestFilter", "instrument_httpx"]

RequestFilter = Callable[[httpx.Request], bool]
"""Decides per request whether it is traced and measured; returning False sends it untouched."""

_ClientT = TypeVar("_ClientT", httpx.Client, httpx.AsyncClient)
_SyncT = TypeVar("_SyncT", bound="HTTPTransport")
_AsyncT = TypeVar("_AsyncT", bound="AsyncHTTPTransport")
_TransportT = TypeVar("_TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
# A response body that ends its hop when it is closed: one per flavour.
_Body = type["_SyncHopStream"] | type["_AsyncHopStream"]


class _ClientHops:
    """What both transports decide per request, in one place; the transports only adapt sync or async calls.

    Built once per transport (see :class:`_Wrapping`), with the body wrapper of its flavour.
    """

    __slots__ = ("_body", "_body_type", "_enrichment", "_request_allow", "_response_allow", "_start", "filter")

    def __init__(
        self,
        filter: RequestFilter | None,
        headers: tuple[HeaderAllowList | None, HeaderAllowList | None],
        start: Callable[[httpx.Request], HttpClientHop | None],
        enrichment: HttpClientEnrichment | None,
        body_type: type[httpx.SyncByteStream | httpx.AsyncByteStream],
        body: _Body,
    ) -> None:
        self.filter = filter
        self._request_allow, self._response_allow = headers
        self._start = start
        self._enrichment = enrichment
        self._body_type = body_type
        self._body = body

    def start(self, request: httpx.Request) -> HttpClientHop | None:
        """Start the hop (context injected into ``request``), or None when the request is not instrumented."""
        if self.filter is not None and not self.filter(request):
            return None
        hop = self._start(request)
        request_headers = self._request_allow
        if request_headers is not None and hop is not None and hop.span.is_recording():
            hop.span.set_attributes(request_headers.from_headers(request.headers))
        return hop

    def responded(self, hop: HttpClientHop, response: httpx.Response) -> httpx.Response:
        """``response`` once its headers have arrived, its body wrapped to end the hop when closed.

        Records the allowed response headers (and keeps them for a hook). A body this client cannot read or
        close, or one already read and closed, ends the hop now.
        """
        response_headers = self._response_allow
        if response_headers is not None and hop.span.is_recording():
            hop.span.set_attributes(response_headers.from_headers(response.headers))
        if self._enrichment is not None:
            self._enrichment.responded(hop, response)
        stream = response.stream
        if isinstance(stream, self._body_type) and not response.is_closed:
            response.stream = self._body(stream, hop, response.status_code)
        else:
            hop.finish(response.status_code)
        return response


class _HopBody:
    """What both hop streams hold: the wrapped body, and the hop it finishes with the response's status."""

    __slots__ = ("_hop", "_status", "_stream")

    def __init__(self, stream: Any, hop: HttpClientHop, status: int) -> None:
        self._stream = stream
        self._hop = hop
        self._status = status


class _SyncHopStream(_HopBody, httpx.SyncByteStream):
    """A response body that finishes its hop when it is closed (or fails while being read)."""

    __slots__ = ()

    _stream: httpx.SyncByteStream

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


class _AsyncHopStream(_HopBody, httpx.AsyncByteStream):
    """The async twin of :class:`_SyncHopStream`."""

    __slots__ = ()

    _stream: httpx.AsyncByteStream

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


class _Wrapping(Generic[_TransportT]):
    """What both transports share: the wrapped transport (or the default one made here), the hops, the repr."""

    _default: ClassVar[Callable[..., Any]]  # httpx's transport of the same flavour
    _body_type: ClassVar[type[httpx.SyncByteStream | httpx.AsyncByteStream]]
    _body: ClassVar[_Body]

    def __init__(
        self,
        transport: _TransportT | None = None,
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
            transport = cast(_TransportT, self._default(**transport_kwargs))
        elif transport_kwargs:
            name = self._default.__name__
            raise TypeError(f"pass either a transport or httpx.{name} arguments, not both: {transport_kwargs}")
        self._transport: _TransportT = transport
        recorder = HopRecorder.of(telemetry)
        settings = recorder.telemetry.config.conventions
        # True: traced. The user's filter and the excluded URLs (OTEL_PYTHON_[HTTPX_]EXCLUDED_URLS) as one call.
        traced = httpx_traced(settings.httpx_excluded_urls, filter)
        headers = recorded_headers(settings, "client", record_request_headers, record_response_headers)
        enrichment = HttpClientEnrichment.build(recorder, request_hook, response_hook, extra_labels)
        start = recorder.start_http_client if enrichment is None else enrichment.start
        self._hops = _ClientHops(traced, headers, start, enrichment, self._body_type, self._body)

    @property
    def transport(self) -> _TransportT:
        """The wrapped transport."""
        return self._transport

    def __repr__(self) -> str:
        return f"hoptel.{self._default.__name__}({self._transport!r})"


class HTTPTransport(_Wrapping[httpx.BaseTransport], httpx.BaseTransport):
    """An httpx transport that traces and measures every request it sends through another transport.

    Args:
        transport: The transport that does the I/O; default ``httpx.HTTPTransport(**transport_kwargs)``.
        telemetry: Whose tracer, propagator and registry to use; default the latest ``hoptel.setup()``'s.
        filter: Called with each ``httpx.Request``; False sends it without a span, metric or propagation. A URL
            that ``OTEL_PYTHON_HTTPX_EXCLUDED_URLS`` (else ``OTEL_PYTHON_EXCLUDED_URLS``) excludes is sent so too.
        record_request_headers, record_response_headers, request_hook, response_hook, extra_labels: see
            :class:`~hoptel.interceptors.http.shared.HttpOptions`.
        **transport_kwargs: Passed to ``httpx.HTTPTransport`` when ``transport`` is not given (``verify``,
            ``retries``, ``limits``, ``http2``, ...).

    Raises:
        TypeError: ``transport_kwargs`` were given together with a ``transport``.

    Example:
        >>> client = httpx.Client(transport=HTTPTransport(retries=1))  # doctest: +SKIP
    """

    _default = httpx.HTTPTransport
    _body_type = httpx.SyncByteStream
    _body = _SyncHopStream

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
        return self._hops.responded(hop, response)

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


class AsyncHTTPTransport(_Wrapping[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport):
    """The async twin of :class:`HTTPTransport`, for ``httpx.AsyncClient``.

    It takes the same arguments, with ``transport`` an ``httpx.AsyncBaseTransport`` (default
    ``httpx.AsyncHTTPTransport(**transport_kwargs)``).

    Raises:
        TypeError: ``transport_kwargs`` were given together with a ``transport``.
    """

    _default = httpx.AsyncHTTPTransport
    _body_type = httpx.AsyncByteStream
    _body = _AsyncHopStream

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
        return self._hops.responded(hop, response)

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


def instrument_httpx(
    client: _ClientT,
    telemetry: Telemetry | None = None,
    *,
    filter: RequestFilter | None = None,
    **options: Unpack[HttpOptions],
) -> _ClientT:
    """Wrap an existing client's transport and every mounted transport in place; calling it again changes nothing.

    Transports that are already hoptel's are left alone, so a request never gets two spans, whether the client was
    built with ``transport=hoptel.HTTPTransport()`` or instrumented twice.

    Args:
        client: An ``httpx.Client`` or ``httpx.AsyncClient``.
        telemetry: Whose tracer, propagator and registry to use; default the latest ``hoptel.setup()``'s.
        filter: Called with each ``httpx.Request``; False sends it without a span, metric or propagation.
        **options: ``record_request_headers``, ``record_response_headers``, ``request_hook``, ``response_hook``,
            ``extra_labels``: see :class:`~hoptel.interceptors.http.shared.HttpOptions`.

    Returns:
        The same client.

    Raises:
        TypeError: ``client`` is neither an ``httpx.Client`` nor an ``httpx.AsyncClient``, or a keyword is none
            of these.
    """
    check_options("instrument_httpx", options)
    # Every wrapped transport reads the header names: a one-shot iterable must not be used up by the first.
    options["record_request_headers"] = tuple(options.get("record_request_headers", ()))
    options["record_response_headers"] = tuple(options.get("record_response_headers", ()))
    wrapper: type[HTTPTransport] | type[AsyncHTTPTransport]
    if isinstance(client, httpx.Client):
        wrapper = HTTPTransport
    elif isinstance(client, httpx.AsyncClient):
        wrapper = AsyncHTTPTransport
    else:
        raise TypeError(f"instrument_httpx expects an httpx.Client or httpx.AsyncClient, got {type(client).__name__}")

    def wrap(transport: Any) -> Any:
        if isinstance(transport, wrapper):
            return transport
        return wrapper(transport, telemetry=telemetry, filter=filter, **options)

    # httpx offers no public way to reach a client's transports after construction: ``_transport`` (the default
    # one) and ``_mounts`` (URL pattern -> transport, or None for "no proxy here") are private attributes that have
    # kept their names and shapes since httpx 0.18. Only the transports are replaced; the dict stays the same.
    client._transport = wrap(client._transport)
    mounts: dict[Any, Any] = client._mounts
    for pattern, transport in list(mounts.items()):
        if transport is not None:
            mounts[pattern] = wrap(transport)
    return client
