"""Pure helpers the four gRPC interceptors share: route tables, call details, and reading a call's final status.

Nothing here starts or ends a span by itself; these functions turn grpcio's shapes (call details, servicer
contexts, call objects) into the values :class:`~hoptel.interceptors.recorder.GrpcHop` is finished with.

>>> target_attributes("orders.internal:50051")
{'server.address': 'orders.internal', 'server.port': 50051}
>>> target_attributes("dns:///[::1]:443")
{'server.address': '::1', 'server.port': 443}
>>> cancellation_code(0.0).name, cancellation_code(None).name
('DEADLINE_EXCEEDED', 'CANCELLED')
"""

from __future__ import annotations

import asyncio
import logging
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import grpc
from grpc.aio import AbortError
from opentelemetry.util.types import AttributeValue

from hoptel.interceptors.grpc_names import UNARY
from hoptel.interceptors.grpc_routes import GrpcRoute
from hoptel.interceptors.recorder import GrpcHop, HopRecorder

__all__ = [
    "MAX_CLIENT_METHODS",
    "ClientCallDetails",
    "MethodFilter",
    "RouteTable",
    "cancellation_code",
    "context_code",
    "finish_aio_server_raised",
    "finish_aio_server_returned",
    "finish_from_call",
    "finish_server_raised",
    "finish_server_returned",
    "method_name",
    "target_attributes",
    "text",
    "traced",
    "unknown_route",
    "with_metadata",
]

_log = logging.getLogger("hoptel.interceptors")

MethodFilter = Callable[[str], bool]
"""Called with a method's full name (``/package.Service/Method``); False skips tracing and metrics for it."""

# A client that forwards arbitrary method names (a gateway, a proxy) must not grow one series per name: past this
# many distinct methods per shape, new names are counted under the ``unknown`` series and not cached.
MAX_CLIENT_METHODS = 2048

OK = grpc.StatusCode.OK
CANCELLED = grpc.StatusCode.CANCELLED
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED
INTERNAL = grpc.StatusCode.INTERNAL
UNKNOWN = grpc.StatusCode.UNKNOWN


def method_name(method: str | bytes) -> str:
    """The method's full name as text (aio hands it around as ``bytes``)."""
    return method.decode("utf-8", "replace") if isinstance(method, bytes) else method


def text(value: str | bytes | None) -> str | None:
    """Status details as text: grpcio's sync servicer context keeps them as ``bytes``, aio as ``str``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or None


def traced(method_filter: MethodFilter | None, method: str) -> bool:
    """Apply the user's filter; a filter that raises is logged and the method traced (never fail the call)."""
    if method_filter is None:
        return True
    try:
        return bool(method_filter(method))
    except Exception:
        _log.warning("hoptel: the gRPC filter raised for %r; tracing the method", method, exc_info=True)
        return True


class RouteTable(dict[Any, "GrpcRoute | None"]):
    """A client interceptor's routes for one RPC shape: method name -> route, or None when filtered out.

    Indexing is the whole hot path: ``table[method]`` is one dict lookup once a method was seen; the first call
    of a method runs the filter once and builds its route (``__missing__``).
    """

    def __init__(
        self,
        recorder: HopRecorder,
        side: str,
        rpc_type: str,
        method_filter: MethodFilter | None,
        limit: int = MAX_CLIENT_METHODS,
    ) -> None:
        super().__init__()
        self._recorder = recorder
        self._side = side
        self._rpc_type = rpc_type
        self._filter = method_filter
        self._limit = limit

    def __missing__(self, method: str | bytes) -> GrpcRoute | None:
        route: GrpcRoute | None
        if not traced(self._filter, method_name(method)):
            route = None
        elif len(self) >= self._limit:
            return self._recorder.grpc_route(self._side, self._rpc_type, method, known=False)
        else:
            route = self._recorder.grpc_route(self._side, self._rpc_type, method)
        self[method] = route
        return route


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


def cancellation_code(time_remaining: float | None) -> grpc.StatusCode:
    """How a server saw its RPC end early: the deadline passed, or the client cancelled."""
    if time_remaining is not None and time_remaining <= 0:
        return DEADLINE_EXCEEDED
    return CANCELLED


def context_code(context: Any) -> grpc.StatusCode | None:
    """The code a handler set (``set_code``/``abort``), or None; None too for a context that cannot say."""
    try:
        code = context.code()
    except Exception:  # e.g. a context wrapped by another interceptor without code()
        return None
    return code if isinstance(code, grpc.StatusCode) else None


def _context_details(context: Any) -> str | None:
    try:
        return text(context.details())
    except Exception:
        return None


def finish_server_returned(hop: GrpcHop, context: Any) -> None:
    """Finish a sync server hop whose handler returned (or whose response iterator ended).

    The status is the code the handler set, else OK; an RPC the client already cancelled (or whose deadline
    passed) is CANCELLED / DEADLINE_EXCEEDED, since grpcio will not send what the handler returned.
    """
    if not context.is_active():
        hop.finish(cancellation_code(context.time_remaining()))
        return
    code = context_code(context)
    if code is None or code is OK:
        hop.finish(OK)
    else:
        hop.finish(code, _context_details(context))


def finish_server_raised(hop: GrpcHop, context: Any, error: BaseException) -> None:
    """Finish a sync server hop whose handler (or response iterator) raised ``error``.

    ``context.abort()`` raises a bare Exception after setting the code: that is the handler's chosen status, not
    an uncaught exception. grpcio marks it in ``context._state.aborted`` (private: its servicer context's RPC
    state, stable since grpcio 1.x); a context wrapped by another interceptor lacks it, and then a code the handler
    set counts as deliberate. An exception while the client is gone is the cancellation surfacing (grpcio raises
    RpcError from the request iterator). Anything else is uncaught: the client sees the code the handler set, or
    UNKNOWN, and the span gets one exception event.
    """
    code = context_code(context)
    aborted = getattr(getattr(context, "_state", None), "aborted", None)
    if aborted is None:
        aborted = code is not None and code is not OK
    if aborted:
        hop.finish(code or UNKNOWN, _context_details(context))
    elif not context.is_active():
        hop.finish(cancellation_code(context.time_remaining()))
    else:
        hop.finish(code or UNKNOWN, f"{type(error).__qualname__}: {error}", error)


def finish_aio_server_returned(hop: GrpcHop, context: Any) -> None:
    """Finish an aio server hop whose handler returned: the code it set, else OK."""
    code = context_code(context)
    if code is None or code is OK:
        hop.finish(OK)
    else:
        hop.finish(code, _context_details(context))


def finish_aio_server_raised(hop: GrpcHop, context: Any, error: BaseException) -> None:
    """Finish an aio server hop whose handler raised ``error``.

    ``AbortError`` is ``context.abort()``: the status it set. ``CancelledError`` (grpc cancels the handler's task)
    and ``GeneratorExit`` (grpc stopped pulling responses) mean the client cancelled or the deadline passed.
    Anything else is uncaught: grpc.aio sends the code the handler set, or UNKNOWN when none (or OK) was set.
    """
    if isinstance(error, AbortError):
        hop.finish(context_code(context) or UNKNOWN, _context_details(context))
    elif isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        hop.finish(cancellation_code(context.time_remaining()))
    else:
        code = context_code(context)
        if code is None or code is OK:
            code = UNKNOWN
        hop.finish(code, f"{type(error).__qualname__}: {error}", error)


def finish_from_call(hop: GrpcHop, call: Any) -> None:
    """Finish a client hop from a terminated sync call/future (never blocks: only called once it is done)."""
    try:
        code = call.code()
    except Exception:  # an object from another interceptor that cannot say: count it as failed
        code = None
    if code is OK:
        hop.finish(OK)
        return
    details: str | None = None
    error: BaseException | None = None
    try:
        details = text(call.details())
        exception = call.exception()
        # grpcio's _FailureOutcome carries the exception an interceptor or serializer raised; RpcErrors are just
        # the status, which the span already has.
        if exception is not None and not isinstance(exception, grpc.RpcError):
            error = exception
    except Exception:  # a cancelled future raises FutureCancelledError from exception()
        pass
    hop.finish(code if isinstance(code, grpc.StatusCode) else UNKNOWN, details, error)
