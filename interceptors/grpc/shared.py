"""Pure helpers the four gRPC interceptors share: per-method route tables, the filter, call details, targets.

A client factory resolves its telemetry and options once, into a :class:`ClientRecording` its client is built from.

>>> target_attributes("orders.internal:50051")
{'server.address': 'orders.internal', 'server.port': 50051}
>>> target_attributes("dns:///[::1]:443")
{'server.address': '::1', 'server.port': 443}
"""

from __future__ import annotations

import logging
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypedDict, TypeVar

import grpc
from opentelemetry.util.types import AttributeValue

from hoptel.interceptors.enrich import GrpcEnrichment
from hoptel.interceptors.exclusions import excluding_services
from hoptel.interceptors.grpc.capture import ClientStart, client_start
from hoptel.interceptors.grpc.client_response import ClientResponseCapture
from hoptel.interceptors.grpc.names import BIDI_STREAM, CLIENT_STREAM, SERVER_STREAM, UNARY
from hoptel.interceptors.grpc.routes import GrpcRoute
from hoptel.interceptors.recorder import GrpcHop, HopRecorder

if TYPE_CHECKING:
    from hoptel.interceptors.extra_labels import ExtraLabels
    from hoptel.interceptors.hooks import GrpcCall, GrpcHook
    from hoptel.telemetry import Telemetry

__all__ = [
    "HANDLER_FACTORIES",
    "MAX_CLIENT_METHODS",
    "MAX_SERVER_METHODS",
    "ClientCallDetails",
    "ClientRecording",
    "ClientRoutes",
    "GrpcClientOptions",
    "GrpcOptions",
    "MethodFilter",
    "MethodTable",
    "RecordingMethods",
    "RouteTable",
    "client_recording",
    "engine_tables",
    "method_name",
    "recording",
    "target_attributes",
    "traced",
    "unknown_route",
    "with_metadata",
]

_log = logging.getLogger("hoptel.interceptors")

_V = TypeVar("_V")
_C = TypeVar("_C", bound=ClientResponseCapture)
_SHAPES = (UNARY, SERVER_STREAM, CLIENT_STREAM, BIDI_STREAM)  # the order of every per-shape tuple here

MethodFilter = Callable[[str], bool]
"""Called with a method's full name (``/package.Service/Method``); False skips tracing and metrics for it."""


class GrpcOptions(TypedDict, total=False):
    """The keywords of the gRPC server factories (``hoptel.server_interceptor()``, ``aio_server_interceptor()``).

    All are optional and keyword-only; the client factories take these and ``target`` (:class:`GrpcClientOptions`).

    Attributes:
        filter: Called once per method with its full name (``/package.Service/Method``); False skips tracing
            and metrics for that method, e.g. ``lambda m: not m.startswith("/internal.")``. Methods of excluded
            services (``grpc.health.v1.Health``, ``OTEL_PYTHON_GRPC_EXCLUDED_SERVICES``) are skipped without asking it.
        request_hook: ``hook(span, call)`` run when an RPC starts: on a server before the handler, on a client
            before the call is sent (see ``interceptors.hooks``).
        response_hook: ``hook(span, call)`` run when an RPC ends (a stream: when it ends), with ``call.code`` set.
        extra_labels: Extra metric labels taken from each call, capped (see ``interceptors.extra_labels``).
    """

    filter: MethodFilter | None  # the documented keyword, as in the OTel instrumentations
    request_hook: GrpcHook | None
    response_hook: GrpcHook | None
    extra_labels: ExtraLabels[GrpcCall] | None


class GrpcClientOptions(GrpcOptions, total=False):
    """The keywords of the gRPC client factories (interceptors and instrumented channels, sync and aio).

    Attributes:
        target: The channel's target (``host:port``); sets ``server.address`` / ``server.port`` on spans.
    """

    target: str | None


def recording(
    telemetry: Telemetry | None, side: str, options: GrpcOptions
) -> tuple[HopRecorder, GrpcEnrichment | None]:
    """What a factory records with: the recorder of ``telemetry`` and the enrichment its ``options`` ask for.

    ``side``: ``"server"`` or ``"client"``. A keyword that is not one of the side's options raises ``TypeError``.
    """
    allowed = (GrpcClientOptions if side == "client" else GrpcOptions).__optional_keys__
    unknown = sorted(options.keys() - allowed)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r} for a gRPC {side}; takes {sorted(allowed)}")
    recorder = HopRecorder.of(telemetry)
    hooks = options.get("request_hook"), options.get("response_hook"), options.get("extra_labels")
    if hooks == (None, None, None):  # nothing to enrich: the factory's start method is the recorder's own
        return recorder, None
    return recorder, GrpcEnrichment(recorder, side, *hooks)


@dataclass(frozen=True, slots=True)
class ClientRecording(Generic[_C]):
    """What a gRPC client (interceptor or instrumented channel, sync or aio) is built from (:func:`client_recording`).

    Read when the client is built, never per call: a client copies what it needs into its own attributes.

    Attributes:
        recorder: The recorder of the factory's telemetry.
        method_filter: The ``filter`` keyword (the excluded services are added by each route table).
        start: The hop start: the recorder's (the enrichment's with hooks), capturing request metadata when
            configured, and wrapped by ``capture`` when there is one.
        peer: ``server.address`` / ``server.port`` from the ``target`` keyword; None without one.
        capture: The response metadata capture (sync or aio); None unless the configuration asks for it.
    """

    recorder: HopRecorder
    method_filter: MethodFilter | None
    start: ClientStart
    peer: Mapping[str, AttributeValue] | None
    capture: _C | None


def client_recording(
    telemetry: Telemetry | None, options: GrpcClientOptions, capturing: Callable[[HopRecorder], _C | None]
) -> ClientRecording[_C]:
    """What a client factory builds its client from: :func:`recording`'s, with the start, filter, peer and capture.

    ``capturing``: the flavour's response metadata capture factory (``client_response_capture`` or its aio twin).
    A keyword that is not a client option raises ``TypeError``.
    """
    recorder, enrichment = recording(telemetry, "client", options)
    start = client_start(recorder, enrichment)
    capture = capturing(recorder)
    if capture is not None:  # one capture (and so one span hand-over) for every method of the client
        start = capture.start(start)
    peer = target_attributes(options.get("target")) or None
    return ClientRecording(recorder, options.get("filter"), start, peer, capture)


# A client that forwards arbitrary method names (a gateway, a proxy) must not grow one series per name: past this
# many distinct methods per shape, new names are counted under the ``unknown`` series and not cached.
MAX_CLIENT_METHODS = 2048
# (request_streaming, response_streaming) -> the RpcMethodHandler attribute holding the behaviour, and the grpc
# factory that builds a handler of that shape (servers rebuild handlers around wrapped behaviours).
HANDLER_FACTORIES: dict[tuple[bool, bool], tuple[str, Any]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}
# A server whose generic handler answers any name (a proxy, a fallback) caches and labels at most this many
# methods; later names are recorded under the ``unknown`` series and not cached.
MAX_SERVER_METHODS = 2048


def method_name(method: str | bytes) -> str:
    """The method's full name as text (aio hands it around as ``bytes``)."""
    return method.decode("utf-8", "replace") if isinstance(method, bytes) else method


def traced(method_filter: MethodFilter | None, method: str) -> bool:
    """Apply the user's filter; a filter that raises is logged and the method traced (never fail the call)."""
    if method_filter is None:
        return True
    try:
        return bool(method_filter(method))
    except Exception:
        _log.warning("hoptel: the gRPC filter raised for %r; tracing the method", method, exc_info=True)
        return True


class MethodTable(dict[Any, "_V | None"]):
    """A client's table for one RPC shape: method name -> ``make(route)``, or None when filtered out.

    Indexing is the whole hot path: ``table[method]`` is one dict lookup once a method was seen; the first call
    of a method runs the filter once, builds its route and what the client keeps for it (``__missing__``).
    """

    def __init__(
        self,
        recorder: HopRecorder,
        side: str,
        rpc_type: str,
        method_filter: MethodFilter | None,
        limit: int = MAX_CLIENT_METHODS,
        *,
        make: Callable[[GrpcRoute], _V],
    ) -> None:
        super().__init__()
        self._recorder = recorder
        self._side = side
        self._rpc_type = rpc_type
        # The user's filter and the excluded services (health checks by default): asked once per method.
        self._filter = excluding_services(recorder.telemetry.config.conventions.grpc_excluded_services, method_filter)
        self._make = make
        self._limit = limit

    def __missing__(self, method: str | bytes) -> _V | None:
        if not traced(self._filter, method_name(method)):
            self[method] = None
            return None
        if len(self) >= self._limit:  # not kept: counted under the ``unknown`` series
            return self._make(self._recorder.grpc_route(self._side, self._rpc_type, method, known=False))
        made = self[method] = self._make(self._recorder.grpc_route(self._side, self._rpc_type, method))
        return made


def engine_tables(
    recording: ClientRecording[Any], shapes: tuple[type[_V], type[_V], type[_V], type[_V]]
) -> tuple[MethodTable[_V], ...]:
    """A client interceptor's four tables: method name -> the client engine's method for it, built once.

    In the order unary-unary, unary-stream, stream-unary, stream-stream; a method is ``shape(None, route, start,
    peer)`` (``recording``'s), None when the filter skips it.
    """
    recorder, method_filter, start, peer = recording.recorder, recording.method_filter, recording.start, recording.peer

    def table(rpc_type: str, shape: Callable[..., _V]) -> MethodTable[_V]:
        return MethodTable(
            recorder, "client", rpc_type, method_filter, make=lambda route: shape(None, route, start, peer)
        )

    return tuple(table(rpc_type, shape) for rpc_type, shape in zip(_SHAPES, shapes, strict=True))


def _route(route: GrpcRoute) -> GrpcRoute:
    return route


class RouteTable(MethodTable[GrpcRoute]):
    """A client's routes for one RPC shape: method name -> route, or None when filtered out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """``RouteTable(recorder, side, rpc_type, method_filter, limit=MAX_CLIENT_METHODS)``."""
        super().__init__(*args, make=_route, **kwargs)


class ClientRoutes:
    """What an instrumented channel (sync or aio) needs to wrap the methods a stub takes from it.

    One route table per RPC shape, and ``recording``'s hop start and peer attributes; ``wrap`` resolves a method's
    route once, when the method is taken.
    """

    def __init__(self, recording: ClientRecording[Any]) -> None:
        recorder, method_filter = recording.recorder, recording.method_filter
        self._tables = {rpc_type: RouteTable(recorder, "client", rpc_type, method_filter) for rpc_type in _SHAPES}
        self._start = recording.start
        self._peer = recording.peer

    def wrap(self, rpc_type: str, method: str, inner: Any, wrapper: Callable[..., Any]) -> Any:
        """``wrapper(inner, route, start, peer)``, or ``inner`` itself when the filter skips ``method``."""
        route = self._tables[rpc_type][method]
        return inner if route is None else wrapper(inner, route, self._start, self._peer)


def _method_factory(index: int, name: str) -> Callable[..., Any]:
    """A channel's ``unary_unary`` & co.: grpc's multicallable for the method, wrapped to record each call."""
    rpc_type = _SHAPES[index]

    def factory(self: RecordingMethods, method: str, *args: Any, **kwargs: Any) -> Any:
        inner = self._multicallable(index, getattr(self._channel, name)(method, *args, **kwargs))
        return self._routes.wrap(rpc_type, method, inner, self.wrappers[index])

    factory.__doc__ = f"grpc's ``{name}`` multicallable for ``method``, recording each call (unless filtered out)."
    return factory


class RecordingMethods:
    """What an instrumented channel, sync or aio, is made of: the wrapped channel and the four method factories.

    Each factory returns grpc's multicallable for the method wrapped in the class's wrapper for that shape
    (``wrappers``, in the order unary-unary, unary-stream, stream-unary, stream-stream), or grpc's own when the
    filter skips it. With a response metadata ``capture`` (only when asked for), a capturing channel wraps grpc's
    multicallables (``_multicallable``).
    """

    wrappers: ClassVar[tuple[Any, Any, Any, Any]]

    def __init__(self, channel: Any, recording: ClientRecording[Any]) -> None:
        # ``_channel``: the name grpcio's own intercepted channel uses (hoptel.interceptors.auto.zerocode follows it)
        self._channel = channel
        self._capture = recording.capture
        self._routes = ClientRoutes(recording)

    def _multicallable(self, index: int, inner: Any) -> Any:
        """Grpc's multicallable for a method of shape ``index`` as the wrapper calls it (a capturing channel's own)."""
        return inner

    unary_unary = _method_factory(0, "unary_unary")
    unary_stream = _method_factory(1, "unary_stream")
    stream_unary = _method_factory(2, "stream_unary")
    stream_stream = _method_factory(3, "stream_stream")


def begin_server_hop(start: Callable[[GrpcRoute, Any], GrpcHop], route: GrpcRoute, context: Any) -> GrpcHop:
    """Start a server hop from a servicer context (sync or aio): metadata in, peer address when recording."""
    hop = start(route, context.invocation_metadata())
    if hop.span.is_recording():
        hop.set_peer(context.peer())
    return hop


def unknown_route(recorder: HopRecorder, method: str | bytes) -> GrpcRoute:
    """The route a method the server does not implement is counted under (one ``unknown`` series)."""
    return recorder.grpc_route("server", UNARY, method, known=False)


class ClientCallDetails(
    namedtuple(  # grpcio's own details are this namedtuple; field types vary by caller
        "ClientCallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    """``grpc.ClientCallDetails`` with every field grpcio reads (sync interceptors), as grpcio builds it."""


def with_metadata(details: Any, metadata: Any) -> ClientCallDetails:
    """Copy of sync ``ClientCallDetails`` carrying ``metadata``."""
    return ClientCallDetails(
        details.method,
        details.timeout,
        metadata,
        details.credentials,
        details.wait_for_ready,
        getattr(details, "compression", None),
    )


def target_attributes(target: str | None) -> dict[str, AttributeValue]:
    """``server.address`` / ``server.port`` from a channel target (``host:port``, ``dns:///host:port``, ...)."""
    if not target:
        return {}
    address = target
    scheme, sep, rest = target.partition(":")
    if sep and scheme in {"dns", "ipv4", "ipv6", "unix", "unix-abstract", "xds", "passthrough"}:
        if scheme.startswith("unix"):
            return {"server.address": rest[2:] if rest.startswith("//") else rest}
        address = rest[2:].partition("/")[2] if rest.startswith("//") else rest
    host, port = address, ""
    if address.startswith("["):
        host, _, after = address[1:].partition("]")
        port = after[1:] if after.startswith(":") else ""
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    attributes: dict[str, AttributeValue] = {"server.address": host}
    if port.isdigit():
        attributes["server.port"] = int(port)
    return attributes
