"""Small real services and measuring helpers for the reliability tests.

* A raw-bytes gRPC service, ``hoptel.rel.Echo/Unary``, sync and aio: it answers ``b"echo:" + request`` and tags
  the current span with ``rel.request`` so a test can find the span of a given request at the receiver.
* An ASGI app (Starlette) with one templated route (``support.uvicorn_server`` serves it).
* Reading hoptel's metrics back from a Telemetry's registry.

Everything binds 127.0.0.1 on ephemeral ports and every loop is bounded.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from opentelemetry import trace
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support import grpc_servers

import hoptel
from hoptel.receiver import OTLPReceiver

__all__ = [
    "ECHO_METHOD",
    "ECHO_SERVICE",
    "GRPC_OPTIONS",
    "EchoCall",
    "aio_echo_handler",
    "aio_grpc_server",
    "echo_reply",
    "exporter_settings",
    "exposition",
    "median",
    "metric_value",
    "series_count",
    "starlette_app",
    "sync_echo_handler",
    "sync_grpc_server",
]

ECHO_SERVICE = "hoptel.rel.Echo"
ECHO_METHOD = f"/{ECHO_SERVICE}/Unary"
# Metadata bigger than gRPC's 8 KiB default must reach the handler, so oversized values are really sent.
GRPC_OPTIONS: list[tuple[str, Any]] = [("grpc.max_metadata_size", 1 << 20)]


EchoCall = Callable[..., bytes]
"""A unary call of the echo method: ``call(request, timeout=...) -> reply``."""


def exporter_settings(receiver: OTLPReceiver, protocol: str) -> dict[str, Any]:
    """``setup()`` overrides that export to ``receiver`` over ``protocol`` (``grpc`` or ``http/protobuf``)."""
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    return {"exporter_otlp_protocol": protocol, "exporter_otlp_endpoint": endpoint}


def echo_reply(request: bytes) -> bytes:
    """What the echo handlers answer to ``request``: what a test expects whatever hoptel did."""
    return b"echo:" + request


def _tag_span(request: bytes) -> None:
    trace.get_current_span().set_attribute("rel.request", request.decode("utf-8", "replace"))


def sync_echo_handler() -> grpc.GenericRpcHandler[Any, Any]:
    """The sync echo service: ``Unary`` answers ``echo_reply(request)``."""

    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        _tag_span(request)
        return echo_reply(request)

    return grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Unary": grpc.unary_unary_rpc_method_handler(unary)})


def aio_echo_handler() -> grpc.GenericRpcHandler[Any, Any]:
    """The aio echo service: ``Unary`` answers ``echo_reply(request)``."""

    async def unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        _tag_span(request)
        return echo_reply(request)

    return grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Unary": grpc.unary_unary_rpc_method_handler(unary)})


def sync_grpc_server(
    *interceptors: Any, workers: int = 8, handler: grpc.GenericRpcHandler[Any, Any] | None = None
) -> contextlib.AbstractContextManager[str]:
    """Serve the sync echo service (or ``handler``) with ``interceptors``; yield the ``127.0.0.1:PORT`` target."""
    return grpc_servers.sync_grpc_server(
        handler or sync_echo_handler(), workers=workers, interceptors=list(interceptors), options=GRPC_OPTIONS
    )


def aio_grpc_server(*interceptors: Any) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve the aio echo service with ``interceptors`` on the running loop; yield the target."""
    return grpc_servers.aio_grpc_server(aio_echo_handler(), interceptors=list(interceptors), options=GRPC_OPTIONS)


def starlette_app() -> Starlette:
    """A Starlette app with one templated route, ``GET /items/{item_id}``, answering ``item:<id>``."""

    async def item(request: Request) -> Response:
        return PlainTextResponse(f"item:{request.path_params['item_id']}")

    return Starlette(routes=[Route("/items/{item_id}", item)])


def metric_value(tel: hoptel.Telemetry, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one sample in ``tel``'s registry (0.0 when the series does not exist)."""
    value = tel.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def series_count(tel: hoptel.Telemetry, family: str) -> int:
    """How many label combinations the metric family ``family`` has (counters by ``_total``, histograms ``_count``).

    prometheus_client names a counter family without its ``_total`` suffix, so ``grpc_server_handled_total`` is
    found as ``grpc_server_handled``.

    Raises:
        LookupError: the registry has no such family (a typo must not read as "no series").
    """
    base = family.removesuffix("_total")
    for metric in tel.registry.collect():
        if metric.name == base:
            sample_name = base + ("_count" if metric.type == "histogram" else "_total")
            return sum(1 for sample in metric.samples if sample.name == sample_name)
    raise LookupError(f"no metric family {family!r} in the registry")


def exposition(tel: hoptel.Telemetry) -> str:
    """``tel``'s registry in the Prometheus text format."""
    return generate_latest(tel.registry).decode("utf-8")


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (which must not be empty)."""
    return statistics.median(values)
