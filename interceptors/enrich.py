"""A factory's hooks and extra labels, applied around the recorder's start methods.

An interceptor, transport or middleware built without ``request_hook``, ``response_hook`` and ``extra_labels``
calls the recorder directly and pays nothing for this module. With any of them it calls one of the ``start``
methods here instead, which have the recorder's signatures: they build the call's read-only view once, pick the
metric series for its extra labels, start the hop as an *enriched* hop (a subclass whose ``finish`` runs the
response hook before the span ends), and run the request hook. Everything else in the integrations is unchanged.

Hooks and the labels function run for every call that is traced (sampled or not), never for calls the filter
skips or that run while instrumentation is suppressed (the exporter's own calls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from opentelemetry.util.types import AttributeValue

from hoptel.interceptors.extra_labels import ExtraLabels, Family, extend_family
from hoptel.interceptors.grpc.names import UNKNOWN_METHOD
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.hooks import GrpcCall, GrpcHook, Guarded, HttpCall, HttpHook, Pairs, guard
from hoptel.interceptors.hop_metrics import GrpcMetrics
from hoptel.interceptors.recorder import (
    GrpcHop,
    HistogramSeries,
    HopRecorder,
    HttpClientHop,
    HttpServerHop,
    Metadata,
)
from hoptel.metrics import Counter, Histogram, HistogramChild

if TYPE_CHECKING:
    import grpc
    import httpx

__all__ = [
    "EnrichedGrpcHop",
    "EnrichedHttpClientHop",
    "EnrichedHttpServerHop",
    "GrpcEnrichment",
    "GrpcStarts",
    "HttpClientEnrichment",
    "HttpServerEnrichment",
    "asgi_url",
    "grpc_starts",
]

_E = TypeVar("_E", bound="_HttpEnrichment")
_GRPC_FAMILIES = ("started", "handled", "msg_received", "msg_sent", "handling_seconds")


# -- hops ---------------------------------------------------------------------------------------------------------


class EnrichedGrpcHop(GrpcHop):
    """A gRPC hop that runs the response hook when it finishes, before its span ends."""

    __slots__ = ("call", "response_hook")

    call: GrpcCall
    response_hook: Guarded[object] | None

    def finish(
        self,
        code: grpc.StatusCode,
        details: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Run the response hook with the final status, then end the RPC (later calls are ignored)."""
        hook = self.response_hook
        if hook is not None and not self.ended:
            call = self.call  # built directly: dataclasses.replace() costs twice as much
            hook(self.span, GrpcCall(call.side, call.method, call.rpc_type, call.metadata, code, details))
        super().finish(code, details, error)


class EnrichedHttpClientHop(HttpClientHop):
    """An httpx hop that runs the response hook when it finishes, before its span ends."""

    __slots__ = ("call", "response_headers", "response_hook")

    call: HttpCall
    response_headers: Pairs
    response_hook: Guarded[object] | None

    def finish(self, status_code: int | None, error: BaseException | None = None) -> None:
        """Run the response hook with the status (or the error), then end the request."""
        hook = self.response_hook
        if hook is not None and not self.ended:
            call = self.call
            headers = self.response_headers
            hook(self.span, HttpCall(call.side, call.method, call.url, call.headers, status_code, headers, None, error))
        super().finish(status_code, error)


class EnrichedHttpServerHop(HttpServerHop):
    """An ASGI hop that runs the response hook when it finishes, before its span ends."""

    __slots__ = ("call", "response_headers", "response_hook")

    call: HttpCall
    response_headers: Pairs
    response_hook: Guarded[object] | None

    def capture_response_headers(self, headers: Any) -> None:
        """Keep the ``http.response.start`` headers (ASGI byte pairs) for the response hook."""
        if self.response_hook is not None:
            self.response_headers = _decoded(headers)

    def finish(self, status_code: int, route: str | None = None, error: BaseException | None = None) -> None:
        """Run the response hook with the status, route and error, then end the request."""
        hook = self.response_hook
        if hook is not None and not self.ended:
            c, headers = self.call, self.response_headers
            hook(self.span, HttpCall(c.side, c.method, c.url, c.headers, status_code, headers, route, error))
        super().finish(status_code, route, error)


# -- extra labels -------------------------------------------------------------------------------------------------


class _Bound:
    """A family whose ``labels()`` appends fixed extra values."""

    __slots__ = ("_extra", "_family")

    def __init__(self, family: Family, extra: tuple[str, ...]) -> None:
        self._family = family
        self._extra = extra

    def labels(self, *values: str) -> Any:
        return self._family.labels(*values, *self._extra)

    def count_of(self, histogram: HistogramChild, *values: str) -> Any:
        if not isinstance(self._family, Counter):  # pragma: no cover - GrpcRoute asks counters only
            raise TypeError(f"{self._family.name} is not a counter")
        return self._family.count_of(histogram, *values, *self._extra)


class _BoundGrpcMetrics:
    """What a ``GrpcRoute`` reads of ``GrpcMetrics``, with one set of extra label values bound."""

    def __init__(self, side: str, families: Mapping[str, Family], extra: tuple[str, ...]) -> None:
        self.side = side
        for name in _GRPC_FAMILIES:
            setattr(self, name, _Bound(families[name], extra))


def _label_function(extra: ExtraLabels[Any], recorder: HopRecorder) -> Guarded[tuple[str, ...]]:
    """``extra``'s function and capping as one guarded call: a failure gives ``""`` for every label."""

    def values(call: Any) -> tuple[str, ...]:
        return extra.values(extra.function(call))

    errors = recorder.telemetry.self_metrics.hook_errors
    return Guarded(values, errors, "extra_labels", ("",) * len(extra.names), shown=extra.function)


class _GrpcLabeller:
    """Routes counting into the extra-label families of one side, per route and label values."""

    def __init__(self, recorder: HopRecorder, side: str, extra: ExtraLabels[GrpcCall]) -> None:
        self._recorder = recorder
        self._side = side
        base = recorder.grpc_metrics(side)
        registry = recorder.telemetry.registry
        self._families = {name: extend_family(registry, getattr(base, name), extra.names) for name in _GRPC_FAMILIES}
        self.values = _label_function(extra, recorder)
        self._metrics: dict[tuple[str, ...], GrpcMetrics] = {}
        self._routes: dict[tuple[GrpcRoute, tuple[str, ...]], GrpcRoute] = {}

    def route(self, route: GrpcRoute, call: GrpcCall) -> GrpcRoute:
        """``route`` counting into the series for ``call``'s label values."""
        values = self.values(call)
        key = (route, values)
        labelled = self._routes.get(key)
        if labelled is None:
            metrics = self._metrics.get(values)
            if metrics is None:
                # duck-typed: a GrpcRoute reads .side and .<family>.labels() only
                metrics = self._metrics[values] = cast(
                    GrpcMetrics, _BoundGrpcMetrics(self._side, self._families, values)
                )
            labelled = self._recorder.grpc_route_counting_into(route, metrics)
            if route.service != UNKNOWN_METHOD:  # a route made up per call (a method the server lacks) is not kept
                self._routes[key] = labelled
        return labelled


class _HttpLabeller:
    """Series of an HTTP duration family with extra labels, per label values."""

    def __init__(self, recorder: HopRecorder, base: Histogram, extra: ExtraLabels[HttpCall]) -> None:
        family = extend_family(recorder.telemetry.registry, base, extra.names)
        if not isinstance(family, Histogram):  # pragma: no cover - extend_family keeps the base family's type
            raise TypeError(f"{base.name} is not a histogram")
        self._family = family
        self.values = _label_function(extra, recorder)
        self._series: dict[tuple[str, ...], HistogramSeries] = {}

    def series(self, call: HttpCall) -> HistogramSeries:
        """The series for ``call``'s label values."""
        values = self.values(call)
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = HistogramSeries(self._family, values)
        return series


# -- starts -------------------------------------------------------------------------------------------------------


def _pairs(metadata: Metadata | None) -> tuple[tuple[str, str | bytes], ...]:
    if not metadata:
        return ()
    return metadata if type(metadata) is tuple else tuple(metadata)


class GrpcEnrichment:
    """One gRPC factory's hooks and extra labels (``side`` is ``client`` or ``server``)."""

    def __init__(
        self,
        recorder: HopRecorder,
        side: str,
        request_hook: GrpcHook | None,
        response_hook: GrpcHook | None,
        extra_labels: ExtraLabels[GrpcCall] | None,
    ) -> None:
        errors = recorder.telemetry.self_metrics.hook_errors
        self._recorder = recorder
        self._side = side
        self._request_hook = guard(request_hook, errors, "request_hook")
        self._response_hook = guard(response_hook, errors, "response_hook")
        self._labeller = None if extra_labels is None else _GrpcLabeller(recorder, side, extra_labels)

    def _begin(self, hop: GrpcHop, call: GrpcCall) -> None:
        enriched = cast(EnrichedGrpcHop, hop)  # built as one by the start method just before
        enriched.call = call
        enriched.response_hook = self._response_hook
        if self._request_hook is not None:
            self._request_hook(hop.span, call)

    def start_client(
        self,
        route: GrpcRoute,
        metadata: Metadata | None,
        peer_attributes: Mapping[str, AttributeValue] | None = None,
    ) -> tuple[GrpcHop, list[tuple[str, str | bytes]]] | None:
        """:meth:`HopRecorder.start_grpc_client` with the hooks and extra labels."""
        call = GrpcCall("client", route.full_name, route.rpc_type, _pairs(metadata))
        if self._labeller is not None:
            route = self._labeller.route(route, call)
        started = self._recorder.start_grpc_client(route, metadata, peer_attributes, EnrichedGrpcHop)
        if started is not None:
            self._begin(started[0], call)
        return started

    def start_server(self, route: GrpcRoute, metadata: Metadata | None) -> GrpcHop:
        """:meth:`HopRecorder.start_grpc_server` with the hooks and extra labels."""
        call = GrpcCall("server", route.full_name, route.rpc_type, _pairs(metadata))
        if self._labeller is not None:
            route = self._labeller.route(route, call)
        hop = self._recorder.start_grpc_server(route, metadata, EnrichedGrpcHop)
        self._begin(hop, call)
        return hop


class GrpcStarts(NamedTuple):
    """The two gRPC start methods a factory's hops begin with (see :func:`grpc_starts`)."""

    client: Callable[..., tuple[GrpcHop, list[tuple[str, str | bytes]]] | None]
    server: Callable[[GrpcRoute, Metadata | None], GrpcHop]


def grpc_starts(recorder: HopRecorder, enrichment: GrpcEnrichment | None) -> GrpcStarts:
    """The one place a gRPC factory's start methods are chosen, for clients and servers, sync and aio.

    The recorder's own when there are no hooks and no extra labels (nothing in between), else the enrichment's,
    which have the recorder's signatures.
    """
    if enrichment is None:
        return GrpcStarts(recorder.start_grpc_client, recorder.start_grpc_server)
    return GrpcStarts(enrichment.start_client, enrichment.start_server)


class _HttpEnrichment:
    """What the HTTP client and server enrichments share: the guarded hooks and the labeller."""

    def _family(self, recorder: HopRecorder) -> Histogram:
        raise NotImplementedError  # pragma: no cover - each side names its duration family

    def __init__(
        self,
        recorder: HopRecorder,
        request_hook: HttpHook | None,
        response_hook: HttpHook | None,
        extra_labels: ExtraLabels[HttpCall] | None,
    ) -> None:
        base = self._family(recorder)
        errors = recorder.telemetry.self_metrics.hook_errors
        self._recorder = recorder
        self._request_hook = guard(request_hook, errors, "request_hook")
        self._response_hook = guard(response_hook, errors, "response_hook")
        self._labeller = None if extra_labels is None else _HttpLabeller(recorder, base, extra_labels)

    def _begin(self, hop: EnrichedHttpClientHop | EnrichedHttpServerHop, call: HttpCall) -> None:
        hop.call = call
        hop.response_headers = ()
        hop.response_hook = self._response_hook
        if self._labeller is not None:
            hop.series = self._labeller.series(call)
        if self._request_hook is not None:
            self._request_hook(hop.span, call)

    @classmethod
    def build(
        cls: type[_E],
        recorder: HopRecorder,
        request_hook: HttpHook | None,
        response_hook: HttpHook | None,
        extra_labels: ExtraLabels[HttpCall] | None,
    ) -> _E | None:
        """The enrichment, or None when there is nothing to do."""
        if request_hook is None and response_hook is None and extra_labels is None:
            return None
        return cls(recorder, request_hook, response_hook, extra_labels)


class HttpClientEnrichment(_HttpEnrichment):
    """One httpx transport's hooks and extra labels."""

    def _family(self, recorder: HopRecorder) -> Histogram:
        return recorder.http_client_duration

    def start(self, request: httpx.Request) -> HttpClientHop | None:
        """:meth:`HopRecorder.start_http_client` with the hooks and extra labels."""
        call = HttpCall("client", request.method, str(request.url), tuple(request.headers.multi_items()))
        hop = self._recorder.start_http_client(request, EnrichedHttpClientHop)
        if hop is not None:
            self._begin(cast(EnrichedHttpClientHop, hop), call)
        return hop

    def responded(self, hop: HttpClientHop, response: httpx.Response) -> None:
        """Keep the response headers for the response hook."""
        if self._response_hook is not None:
            cast(EnrichedHttpClientHop, hop).response_headers = tuple(response.headers.multi_items())


class HttpServerEnrichment(_HttpEnrichment):
    """One ASGI middleware's hooks and extra labels."""

    def _family(self, recorder: HopRecorder) -> Histogram:
        return recorder.http_server_duration

    def start(self, scope: Mapping[str, Any]) -> EnrichedHttpServerHop:
        """:meth:`HopRecorder.start_http_server` with the hooks and extra labels."""
        headers = _decoded(scope.get("headers") or ())
        call = HttpCall("server", scope.get("method", "GET"), asgi_url(scope, headers), headers)
        hop = cast(EnrichedHttpServerHop, self._recorder.start_http_server(scope, EnrichedHttpServerHop))
        self._begin(hop, call)
        return hop


def _decoded(headers: Any) -> Pairs:
    """ASGI ``(bytes, bytes)`` header pairs as text (latin-1, as HTTP/1.1 defines header bytes)."""
    return tuple((name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in headers)


def asgi_url(scope: Mapping[str, Any], headers: Pairs = ()) -> str:
    """The request URL an ASGI ``http`` scope describes: scheme, ``Host`` (else the server), path and query.

    >>> asgi_url({"scheme": "https", "server": ("10.0.0.1", 8443), "path": "/items/1", "query_string": b"q=1"})
    'https://10.0.0.1:8443/items/1?q=1'
    """
    host = next((value for name, value in headers if name == "host"), None)
    server = scope.get("server")
    if host is None and server:
        host = str(server[0]) if server[1] is None else f"{server[0]}:{server[1]}"
    query = scope.get("query_string") or b""
    url = f"{scope.get('scheme', 'http')}://{host or ''}{scope.get('path', '')}"
    return f"{url}?{query.decode('latin-1')}" if query else url
