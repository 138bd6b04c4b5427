"""The per-hop recorder: the one place that starts and ends spans and observes latency for every integration.

Interceptors and transports only adapt their framework's shapes to these calls::

    hop, metadata = recorder.start_grpc_client(route, metadata)     # CLIENT span, context injected
    ...the call...
    hop.finish(grpc.StatusCode.OK)                                  # span ends, histogram observed

Work is split so that an unsampled call pays only for propagation: span attributes are precomputed per route and
anything per-call (peer address, URL) is built only when the span is recording. No context is built that nobody
reads: a client injects its new span straight from the span (its hop keeps the caller's context), and a server
starts its span from the extracted parent and builds the one context its handler runs in.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from hoptel.hop_span import remote_child_starter
from hoptel.interceptors.grpc.names import STATUS, UNKNOWN_METHOD
from hoptel.interceptors.grpc.routes import GrpcRoute, SemconvMode, grpc_status_attributes
from hoptel.interceptors.hop_metrics import GrpcMetrics, HttpClientMetrics, HttpServerMetrics
from hoptel.interceptors.http.names import normalize_method, redact_url
from hoptel.metrics import LATENCY_BUCKETS, Histogram, HistogramChild
from hoptel.otel_internals import SPAN_KEY, current_context
from hoptel.otel_internals import SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY
from hoptel.telemetry import Telemetry, current

if TYPE_CHECKING:
    import httpx

__all__ = ["GrpcHop", "HistogramSeries", "HopRecorder", "HttpClientHop", "HttpServerHop", "parse_grpc_peer"]

# _SUPPRESS_KEY is set by the OTel SDK (and hoptel's batch worker) while exporting: calls then are not instrumented.
_CLIENT = SpanKind.CLIENT
_SERVER = SpanKind.SERVER
_get_current = current_context  # the ContextVar's own get (see otel_internals): no Python call
_DEFAULT_PORTS = {"http": 80, "https": 443}
_OK = grpc.StatusCode.OK
# Peer strings (one per client connection) -> their span attributes; bounded, past the bound peers are parsed.
_MAX_CACHED_PEERS = 1024
_peer_attributes: dict[str, Mapping[str, AttributeValue]] = {}

Metadata = Sequence[tuple[str, str | bytes]]


def parse_grpc_peer(peer: str | None) -> dict[str, AttributeValue]:
    """``network.peer.*`` attributes from grpc's ``context.peer()`` (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``)."""
    if not peer:
        return {}
    kind, _, address = peer.partition(":")
    if kind not in {"ipv4", "ipv6"}:
        return {}
    host, _, port = address.rpartition(":")
    attributes: dict[str, AttributeValue] = {"network.peer.address": host.strip("[]")}
    if port.isdigit():
        attributes["network.peer.port"] = int(port)
    return attributes


class _Hop:
    """What every hop in flight has: its span and context, when it started, whether it already ended.

    ``context`` is, for a server hop, the context the handler runs in (its span current); for a client hop, the
    caller's context the span was started in (the span itself is only propagated, never made current).
    """

    __slots__ = ("context", "ended", "span", "started_at")

    def __init__(self, span: Span, context: Context) -> None:
        self.span = span
        self.context = context
        self.started_at = perf_counter()
        self.ended = False

    def _end_span(self, error: BaseException | None, failed: bool, description: str | None) -> SpanContext:
        """End the recording span; return its context (trace and span id) for the exemplar.

        Callers check ``is_recording()``. The histogram keeps the context as it is and reads its ids only when
        the registry is collected or pushed.
        """
        span = self.span
        if error is not None:
            span.record_exception(error)
        if failed:
            span.set_status(Status(StatusCode.ERROR, description))
        span.end()
        return span.get_span_context()


class GrpcHop(_Hop):
    """One RPC in flight; interceptors call ``finish`` once.

    Interceptors count messages in ``sent``/``received`` only on streamed sides; a unary side counts one message
    per finished call through the route's histogram (see ``GrpcRoute``).
    """

    __slots__ = ("received", "route", "sent")

    def __init__(self, route: GrpcRoute, span: Span, context: Context) -> None:
        # _Hop's fields set here rather than through super().__init__: one call less on every RPC.
        self.span = span
        self.context = context
        self.started_at = perf_counter()
        self.ended = False
        self.route = route
        self.sent = 0
        self.received = 0

    def set_peer(self, peer: str | None) -> None:
        """Record the remote address (server side). Callers check ``span.is_recording()`` first."""
        attributes = _peer_attributes.get(peer)  # type: ignore[arg-type]  # None is simply never a key
        if attributes is None:
            attributes = parse_grpc_peer(peer)
            if peer is not None and len(_peer_attributes) < _MAX_CACHED_PEERS:
                _peer_attributes[peer] = attributes
        if attributes:
            self.span.set_attributes(attributes)

    def finish(
        self,
        code: grpc.StatusCode,
        details: str | None = None,
        error: BaseException | None = None,
    ) -> None:
        """End the RPC with its final status; later calls are ignored."""
        if self.ended:
            return
        self.ended = True
        elapsed = perf_counter() - self.started_at
        route = self.route
        outcome = route.ok if code is _OK else None
        if outcome is None:
            outcome = route.outcome(code)
        if self.sent:  # outcome.handled counts the latency observation below; it is not incremented
            route.msg_sent.inc(self.sent)
        if self.received:
            route.msg_received.inc(self.received)
        span = self.span
        if span.is_recording():
            span.set_attributes(outcome.attributes)
            name = outcome.status_name
            exemplar = self._end_span(error, outcome.failed, f"{name}: {details}" if details else name)
            outcome.histogram.observe(elapsed, exemplar)
        else:
            outcome.histogram.observe(elapsed)


class HttpClientHop(_Hop):
    """One outgoing HTTP request; finished when its response is closed (or the request failed).

    ``series`` is the latency family it observes into (hooks' extra labels put their call's series there).
    """

    __slots__ = ("_method", "_server_address", "series")

    def __init__(
        self, span: Span, context: Context, metrics: HistogramSeries, method: str, server_address: str
    ) -> None:
        # _Hop's fields set here rather than through super().__init__: one call less on every request.
        self.span = span
        self.context = context
        self.started_at = perf_counter()
        self.ended = False
        self.series = metrics
        self._method = method
        self._server_address = server_address

    def finish(self, status_code: int | None, error: BaseException | None = None) -> None:
        """End the request with the response status, or with the exception that ended it."""
        if self.ended:
            return
        self.ended = True
        elapsed = perf_counter() - self.started_at
        if status_code is None:
            status_text = ""
            error_type = type(error).__qualname__ if error is not None else ""
        else:
            status_text = str(status_code)
            failed = status_code >= 400
            error_type = type(error).__qualname__ if error is not None else (status_text if failed else "")
        child = self.series.child(self._method, self._server_address, status_text, error_type)
        span = self.span
        if span.is_recording():
            if status_code is not None:
                span.set_attribute("http.response.status_code", status_code)
            if error_type:
                span.set_attribute("error.type", error_type)
            child.observe(elapsed, self._end_span(error, bool(error_type), error_type or None))
        else:
            child.observe(elapsed, None)


class HttpServerHop(_Hop):
    """One incoming HTTP request handled by an ASGI app; ``series`` as for :class:`HttpClientHop`."""

    __slots__ = ("_method", "series")

    def __init__(self, span: Span, context: Context, metrics: HistogramSeries, method: str) -> None:
        # _Hop's fields set here rather than through super().__init__: one call less on every request.
        self.span = span
        self.context = context
        self.started_at = perf_counter()
        self.ended = False
        self.series = metrics
        self._method = method

    def finish(self, status_code: int, route: str | None = None, error: BaseException | None = None) -> None:
        """End the request with its status (500 when the app raised) and the route template if known."""
        if self.ended:
            return
        self.ended = True
        elapsed = perf_counter() - self.started_at
        status_text = str(status_code)
        child = self.series.child(self._method, route or "", status_text)
        span = self.span
        if span.is_recording():
            span.set_attribute("http.response.status_code", status_code)
            if route:
                method = self._method
                span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
                span.set_attribute("http.route", route)
            failed = status_code >= 500
            error_type = type(error).__qualname__ if error is not None else (status_text if failed else "")
            if error_type:
                span.set_attribute("error.type", error_type)
            child.observe(elapsed, self._end_span(error, failed, error_type or None))
        else:
            child.observe(elapsed, None)


class HistogramSeries:
    """Caches a histogram family's children by label values; ``extra`` values are appended to every key.

    The HTTP hops observe through one of these: the recorder's own for the built-in labels, or one per set of
    extra label values (``interceptors.extra_labels``) bound to a family with those extra label names.
    """

    __slots__ = ("_children", "_extra", "_family")

    def __init__(self, family: Histogram, extra: tuple[str, ...] = ()) -> None:
        self._family = family
        self._extra = extra
        self._children: dict[tuple[str, ...], HistogramChild] = {}

    def child(self, *key: str) -> HistogramChild:
        """The child for these label values (the extra values appended), created on first use."""
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._family.labels(*key, *self._extra)
        return child


_recorders: weakref.WeakKeyDictionary[Telemetry, HopRecorder] = weakref.WeakKeyDictionary()


class HopRecorder:
    """Starts hops for one Telemetry: its tracer, its propagator, its registry."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.enabled = telemetry.enabled
        self.tracer = telemetry.hop_tracer
        self._start_remote_child = remote_child_starter(self.tracer)
        self.propagator = telemetry.propagator
        self._mode = SemconvMode(telemetry.config.semconv_opt_in)
        registry = telemetry.registry
        config = telemetry.config
        grpc_buckets = config.grpc_buckets or LATENCY_BUCKETS
        http_buckets = config.http_buckets or LATENCY_BUCKETS
        self._grpc = {side: GrpcMetrics(registry, side, grpc_buckets) for side in ("server", "client")}
        self._status_attributes = {
            side: {code: grpc_status_attributes(info, self._mode, side == "server") for code, info in STATUS.items()}
            for side in ("server", "client")
        }
        self._routes: dict[tuple[str, str], dict[str | bytes, GrpcRoute]] = {}
        self.http_client_duration = HttpClientMetrics(registry, http_buckets).duration
        self.http_server_duration = HttpServerMetrics(registry, http_buckets).duration
        self._http_client = HistogramSeries(self.http_client_duration)
        self._http_server = HistogramSeries(self.http_server_duration)
        self._http_method_attributes: dict[str, tuple[str, Mapping[str, AttributeValue]]] = {}

    @classmethod
    def of(cls, telemetry: Telemetry | None = None) -> HopRecorder:
        """The recorder of ``telemetry`` (default: the latest ``setup()``'s, else the process default)."""
        resolved = current(telemetry)
        recorder = _recorders.get(resolved)
        if recorder is None:
            recorder = _recorders.setdefault(resolved, cls(resolved))
        return recorder

    # gRPC -------------------------------------------------------------------------------------------------

    def grpc_metrics(self, side: str) -> GrpcMetrics:
        """The five ``grpc_{side}_*`` families (``side`` is ``server`` or ``client``)."""
        return self._grpc[side]

    def grpc_route_counting_into(self, route: GrpcRoute, metrics: GrpcMetrics) -> GrpcRoute:
        """``route`` (same span name and attributes) counting into other families: those with extra labels."""
        return GrpcRoute(
            route.full_name,
            route.rpc_type,
            metrics,
            self._mode,
            known=route.service != UNKNOWN_METHOD,
            status_attributes=route.status_attributes,
        )

    def grpc_routes(self, side: str, rpc_type: str) -> dict[str | bytes, GrpcRoute]:
        """The route cache for one side and shape, keyed by the method name as the framework gives it."""
        return self._routes.setdefault((side, rpc_type), {})

    def grpc_route(self, side: str, rpc_type: str, method: str | bytes, *, known: bool = True) -> GrpcRoute:
        """The route for ``method`` (cached when known; a method the server lacks is not cached)."""
        cache = self.grpc_routes(side, rpc_type)
        route = cache.get(method)
        if route is None:
            name = method.decode("utf-8", "replace") if isinstance(method, bytes) else method
            route = GrpcRoute(
                name,
                rpc_type,
                self._grpc[side],
                self._mode,
                known=known,
                status_attributes=self._status_attributes[side],
            )
            if known:
                cache[method] = route
        return route

    def start_grpc_client(
        self,
        route: GrpcRoute,
        metadata: Metadata | None,
        peer_attributes: Mapping[str, AttributeValue] | None = None,
        hop_type: type[GrpcHop] = GrpcHop,
    ) -> tuple[GrpcHop, list[tuple[str, str | bytes]]] | None:
        """Start a CLIENT span under the current context and inject it into a copy of ``metadata``.

        ``hop_type`` is the class of the hop to build (a subclass that runs hooks; the default otherwise).

        Returns:
            The hop and the metadata to send, or None when instrumentation is suppressed (exporter calls).
        """
        parent = _get_current()
        if parent.get(_SUPPRESS_KEY) or not self.enabled:
            return None
        span = self.tracer.start_span(route.span_name, parent, _CLIENT, route.attributes)
        if peer_attributes and span.is_recording():
            span.set_attributes(peer_attributes)
        outgoing = self.propagator.inject_span_metadata(metadata, span.get_span_context(), parent)
        route.started.tick()
        return hop_type(route, span, parent), outgoing

    def start_grpc_server(
        self,
        route: GrpcRoute,
        metadata: Metadata | None,
        hop_type: type[GrpcHop] = GrpcHop,
    ) -> GrpcHop:
        """Start a SERVER span whose parent is extracted from the invocation metadata (``hop_type``: see above)."""
        parent, entries = self.propagator.extract_metadata_parent(metadata)
        span = self._start_remote_child(route.span_name, parent, _SERVER, route.attributes)
        route.started.tick()
        entries[SPAN_KEY] = span
        return hop_type(route, span, Context(entries))

    # HTTP -------------------------------------------------------------------------------------------------

    def _method_attributes(self, method: str) -> tuple[str, Mapping[str, AttributeValue]]:
        known = self._http_method_attributes.get(method)
        if known is not None:
            return known
        normalized = normalize_method(method)
        attributes: dict[str, AttributeValue] = {"http.request.method": normalized}
        if normalized == "_OTHER":
            attributes["http.request.method_original"] = method[:64]
            return normalized, attributes
        known = self._http_method_attributes[method] = (normalized, attributes)
        return known

    def start_http_client(
        self,
        request: httpx.Request,
        hop_type: type[HttpClientHop] = HttpClientHop,
    ) -> HttpClientHop | None:
        """Start a CLIENT span for ``request`` and inject the context into its headers (in place).

        ``hop_type`` is the class of the hop to build (a subclass that runs hooks; the default otherwise).
        """
        parent = _get_current()
        if parent.get(_SUPPRESS_KEY) or not self.enabled:
            return None
        method, attributes = self._method_attributes(request.method)
        span = self.tracer.start_span("HTTP" if method == "_OTHER" else method, parent, _CLIENT, attributes)
        url = request.url
        host = url.host
        if span.is_recording():
            span.set_attributes(
                {
                    "url.full": redact_url(str(url)),
                    "server.address": host,
                    "server.port": url.port or _DEFAULT_PORTS.get(url.scheme, 0),
                }
            )
        self.propagator.inject_span_headers(request.headers, span.get_span_context(), parent)
        return hop_type(span, parent, self._http_client, method, host)

    def start_http_server(
        self,
        scope: Mapping[str, Any],
        hop_type: type[HttpServerHop] = HttpServerHop,
    ) -> HttpServerHop:
        """Start a SERVER span for an ASGI ``http`` scope, parent extracted from its headers (``hop_type``: above)."""
        parent, entries = self.propagator.extract_asgi_parent(scope)
        method, attributes = self._method_attributes(scope.get("method", "GET"))
        span = self._start_remote_child("HTTP" if method == "_OTHER" else method, parent, _SERVER, attributes)
        if span.is_recording():
            span.set_attributes(_asgi_attributes(scope))
        entries[SPAN_KEY] = span
        return hop_type(span, Context(entries), self._http_server, method)


def _span_method(method: str) -> str:
    """The method part of an HTTP span name: semconv names spans of non-standard (``_OTHER``) methods ``HTTP``."""
    return "HTTP" if method == "_OTHER" else method


def _asgi_attributes(scope: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Server span attributes from an ASGI scope (only built for recording spans)."""
    attributes: dict[str, AttributeValue] = {
        "url.path": scope.get("path", ""),
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    # The address part is the same for every request of one connection (servers pass the same tuples): cached.
    key = (scope.get("server"), scope.get("client"))
    try:
        addresses = _asgi_addresses.get(key)
    except TypeError:  # an unhashable address (a list): built every time
        addresses = _asgi_address_attributes(*key)
    else:
        if addresses is None:
            addresses = _asgi_address_attributes(*key)
            if len(_asgi_addresses) < _MAX_CACHED_PEERS:
                _asgi_addresses[key] = addresses
    attributes.update(addresses)
    return attributes


# (scope["server"], scope["client"]) -> their span attributes; bounded as _peer_attributes is.
_asgi_addresses: dict[tuple[Any, Any], Mapping[str, AttributeValue]] = {}


def _asgi_address_attributes(server: Any, client: Any) -> dict[str, AttributeValue]:
    """``server.*``, ``client.address`` and ``network.peer.*`` from an ASGI scope's ``server`` and ``client``."""
    attributes: dict[str, AttributeValue] = {}
    if server:
        attributes["server.address"] = str(server[0])
        if server[1] is not None:
            attributes["server.port"] = int(server[1])
    if client:
        attributes["client.address"] = str(client[0])
        attributes["network.peer.address"] = str(client[0])
        if client[1] is not None:
            attributes["network.peer.port"] = int(client[1])
    return attributes
