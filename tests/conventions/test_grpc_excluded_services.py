"""gRPC health checks are excluded by default; OTEL_PYTHON_GRPC_EXCLUDED_SERVICES excludes more services.

Real servers (sync and aio) serve grpcio-health-checking's ``grpc.health.v1.Health`` next to the echo service; the
clients are instrumented both ways (interceptor and instrumented channel). Spans are read at the OTLP receiver,
metrics in the registry.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from conventions_support import sample
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from support import grpc_echo as echo
from support.fixture_types import TelemetryFactory
from support.grpc_servers import aio_grpc_server, sync_grpc_server

import hoptel
from hoptel.receiver import OTLPReceiver

WAYS = ("interceptor", "channel")
HEALTH_LABELS = {"grpc_type": "unary", "grpc_service": "grpc.health.v1.Health", "grpc_method": "Check"}
ECHO_LABELS = {"grpc_type": "unary", "grpc_service": echo.SERVICE, "grpc_method": "Unary"}


def _sync_health() -> grpc.GenericRpcHandler[Any, Any]:
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server = _HandlerCollector()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return server.handler


async def _aio_health() -> grpc.GenericRpcHandler[Any, Any]:
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server = _HandlerCollector()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return server.handler


class _HandlerCollector:
    """Takes the generic handler ``add_HealthServicer_to_server`` registers (our servers take handlers)."""

    handler: grpc.GenericRpcHandler[Any, Any]

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        (self.handler,) = handlers

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        """Newer generated code also registers the methods by name; the generic handler is enough here."""


def _sync_channel(tel: hoptel.Telemetry, target: str, way: str, **options: Any) -> grpc.Channel:
    if way == "channel":
        return hoptel.instrument_channel(grpc.insecure_channel(target), tel, target=target, **options)
    interceptor = hoptel.client_interceptor(tel, target=target, **options)
    return grpc.intercept_channel(grpc.insecure_channel(target), interceptor)


def _aio_channel(tel: hoptel.Telemetry, target: str, way: str) -> grpc.aio.Channel:
    if way == "channel":
        return hoptel.instrument_aio_channel(grpc.aio.insecure_channel(target), tel, target=target)
    return grpc.aio.insecure_channel(target, interceptors=hoptel.aio_client_interceptors(tel, target=target))


def _names(receiver: OTLPReceiver) -> list[tuple[str, str]]:
    return sorted((span.kind, span.name) for span in receiver.spans())


def _started(tel: hoptel.Telemetry, labels: dict[str, str]) -> tuple[float, float]:
    return (
        sample(tel, "grpc_client_started_total", **labels),
        sample(tel, "grpc_server_started_total", **labels),
    )


@pytest.mark.parametrize("way", WAYS)
def test_sync_health_checks_are_not_traced_by_default(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """The real Health service answers SERVING; its RPCs get no span and no metric on either side."""
    tel = make_telemetry()
    server = sync_grpc_server(echo.sync_handler(), _sync_health(), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, _sync_channel(tel, target, way) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert channel.unary_unary(echo.UNARY)(b"ok", timeout=10) == b"ok"
    assert tel.force_flush()
    assert _names(receiver) == [("CLIENT", "hoptel.test.Echo/Unary"), ("SERVER", "hoptel.test.Echo/Unary")]
    assert _started(tel, HEALTH_LABELS) == (0, 0)
    assert _started(tel, ECHO_LABELS) == (1, 1)


@pytest.mark.parametrize("way", WAYS)
async def test_aio_health_checks_are_not_traced_by_default(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """The aio Health servicer under grpc.aio: the same default on both sides."""
    tel = make_telemetry()
    handlers = (echo.aio_handler(), await _aio_health())
    async with aio_grpc_server(*handlers, interceptors=[hoptel.aio_server_interceptor(tel)]) as target:
        channel = _aio_channel(tel, target, way)
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            assert await channel.unary_unary(echo.UNARY, None, None)(b"ok", timeout=10) == b"ok"
        finally:
            await channel.close()
    assert tel.force_flush()
    assert _names(receiver) == [("CLIENT", "hoptel.test.Echo/Unary"), ("SERVER", "hoptel.test.Echo/Unary")]
    assert _started(tel, HEALTH_LABELS) == (0, 0)


@pytest.mark.parametrize("way", WAYS)
def test_trace_health_checks_option_traces_them(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """setup(trace_health_checks=True) (HOPTEL_TRACE_HEALTH_CHECKS) records health checks like any RPC."""
    tel = make_telemetry(trace_health_checks=True)
    server = sync_grpc_server(_sync_health(), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, _sync_channel(tel, target, way) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert tel.force_flush()
    assert _names(receiver) == [("CLIENT", "grpc.health.v1.Health/Check"), ("SERVER", "grpc.health.v1.Health/Check")]
    assert _started(tel, HEALTH_LABELS) == (1, 1)


@pytest.mark.parametrize("way", WAYS)
def test_excluded_services_variable_adds_to_the_default(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """OTEL_PYTHON_GRPC_EXCLUDED_SERVICES names more services (fully qualified); health checks stay excluded."""
    tel = make_telemetry(python_grpc_excluded_services=f" other.Service , {echo.SERVICE}")
    server = sync_grpc_server(echo.sync_handler(), _sync_health(), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, _sync_channel(tel, target, way) as channel:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert channel.unary_unary(echo.UNARY)(b"ok", timeout=10) == b"ok"
        assert channel.stream_stream(echo.BIDI)(iter([b"a", b"b"]), timeout=10).next() == b"a"
    assert tel.force_flush()
    assert _names(receiver) == []
    assert _started(tel, ECHO_LABELS) == (0, 0)


@pytest.mark.parametrize("way", WAYS)
def test_excluded_services_and_filter_combine(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """An RPC is traced only when its service is not excluded and filter= accepts its method."""
    tel = make_telemetry(python_grpc_excluded_services=echo.SERVICE, trace_health_checks=True)
    asked: list[str] = []

    def traced(method: str) -> bool:
        asked.append(method)
        return method != "/grpc.health.v1.Health/Watch"

    interceptor = hoptel.server_interceptor(tel, filter=traced)
    server = sync_grpc_server(echo.sync_handler(), _sync_health(), interceptors=[interceptor])
    with server as target, _sync_channel(tel, target, way, filter=traced) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        watch = stub.Watch(health_pb2.HealthCheckRequest(), timeout=10)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
        assert channel.unary_unary(echo.UNARY)(b"ok", timeout=10) == b"ok"
    assert tel.force_flush()
    names = {name for _, name in _names(receiver)}
    assert names == {"grpc.health.v1.Health/Check"}
    assert echo.UNARY not in asked  # an excluded service never reaches the filter
