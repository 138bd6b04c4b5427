"""Options and switches: filter=, OTEL_SEMCONV_STABILITY_OPT_IN, suppressed instrumentation, a disabled SDK."""

from __future__ import annotations

import collections
from collections.abc import Callable

import grpc
import pytest
from grpc_support import (
    CLIENT_WAYS,
    AioServe,
    SyncServe,
    aio_client,
    arpc_pair,
    echo_labels,
    rpc_pair,
    rpc_spans,
    sample,
    sync_client,
)
from opentelemetry.instrumentation.utils import suppress_instrumentation
from support import grpc_echo as echo

import hoptel
from hoptel.receiver import OTLPReceiver

HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def _health_handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(lambda request, context: b"SERVING")}
    )


async def _aio_check(request: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    return b"SERVING"


@pytest.mark.parametrize("way", CLIENT_WAYS)
def test_filter_skips_health_checks(
    make_telemetry: Callable[..., hoptel.Telemetry], serve_sync: SyncServe, receiver: OTLPReceiver, way: str
) -> None:
    """filter= False skips spans and metrics for a method on both sides; it is asked once per method."""
    telemetry = make_telemetry(trace_health_checks=True)  # health checks reach the filter (not excluded by default)
    asked: list[str] = []

    def traced(method: str) -> bool:
        asked.append(method)
        return not method.startswith("/grpc.health.v1.Health/")

    target = serve_sync(hoptel.server_interceptor(telemetry, filter=traced), extra=[_health_handler()])
    client = sync_client(telemetry, target, way, filter=traced)
    try:
        for _ in range(3):
            assert client.channel.unary_unary(HEALTH_CHECK)(b"") == b"SERVING"
            assert client.unary(b"ok") == b"ok"
    finally:
        client.channel.close()
    rpc_spans(receiver, echo.UNARY, 3)
    assert [span for span in receiver.spans() if "Health" in span.name] == []
    # Once per method and side: an interceptor asks on a method's first call, a channel when it gives the method out
    # (the echo client takes all four echo methods, so the channel way also asks for the three not called).
    times = collections.Counter(asked)
    assert times[HEALTH_CHECK] == times[echo.UNARY] == 2
    assert set(times.values()) == {2} if way == "interceptor" else {1, 2}
    health = {"grpc_type": "unary", "grpc_service": "grpc.health.v1.Health", "grpc_method": "Check"}
    for side in ("client", "server"):
        assert sample(telemetry, f"grpc_{side}_started_total", **health) == 0
        assert sample(telemetry, f"grpc_{side}_started_total", **echo_labels(echo.UNARY, "unary")) == 3


@pytest.mark.parametrize("way", CLIENT_WAYS)
async def test_aio_filter_skips_health_checks(
    make_telemetry: Callable[..., hoptel.Telemetry], serve_aio: AioServe, receiver: OTLPReceiver, way: str
) -> None:
    """The aio interceptors honour filter= the same way."""
    telemetry = make_telemetry(trace_health_checks=True)  # health checks reach the filter (not excluded by default)

    def traced(method: str) -> bool:
        return method != HEALTH_CHECK

    health = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(_aio_check)}
    )
    target = await serve_aio(hoptel.aio_server_interceptor(telemetry, filter=traced), extra=[health])
    client = aio_client(telemetry, target, way, filter=traced)
    try:
        assert await client.channel.unary_unary(HEALTH_CHECK, None, None)(b"") == b"SERVING"
        assert await client.unary(b"ok") == b"ok"
    finally:
        await client.channel.close()
    await arpc_pair(receiver, echo.UNARY)
    assert [span for span in receiver.spans() if "Health" in span.name] == []


@pytest.mark.parametrize("opt_in", ["rpc", "rpc/dup"])
def test_semconv_opt_in(
    make_telemetry: Callable[..., hoptel.Telemetry],
    serve_sync: SyncServe,
    receiver: OTLPReceiver,
    opt_in: str,
) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN=rpc emits the release-candidate RPC attributes; rpc/dup emits both sets."""
    telemetry = make_telemetry(semconv_stability_opt_in=opt_in)
    client = sync_client(telemetry, serve_sync(hoptel.server_interceptor(telemetry)))
    try:
        with pytest.raises(grpc.RpcError):
            client.unary(b"abort")
    finally:
        client.channel.close()
    client_span, server_span = rpc_pair(receiver, echo.UNARY)
    for span in (client_span, server_span):
        assert span.attributes["rpc.system.name"] == "grpc"
        assert span.attributes["rpc.method"] == "hoptel.test.Echo/Unary"
        assert span.attributes["rpc.status_code"] == "NOT_FOUND"
        if opt_in == "rpc":
            assert not {"rpc.system", "rpc.service", "rpc.grpc.status_code"} & span.attributes.keys()
        else:
            assert span.attributes["rpc.system"] == "grpc"
            assert span.attributes["rpc.service"] == "hoptel.test.Echo"
            assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert client_span.attributes["error.type"] == "NOT_FOUND"  # any non-OK code is a client error
    assert "error.type" not in server_span.attributes  # NOT_FOUND is no server error


def test_suppressed_calls_pass_through(
    telemetry: hoptel.Telemetry, serve_sync: SyncServe, receiver: OTLPReceiver
) -> None:
    """Under suppressed instrumentation (how exporters call out) the client adds no span, metadata or metrics."""
    client = sync_client(telemetry, serve_sync(hoptel.server_interceptor(telemetry)))
    try:
        with suppress_instrumentation():
            seen = client.unary(b"metadata").decode()
    finally:
        client.channel.close()
    assert "traceparent" not in seen
    (server,) = receiver.wait_for_spans(1)
    assert server.kind == "SERVER"
    assert server.parent_span_id is None
    assert sample(telemetry, "grpc_client_started_total", **echo_labels(echo.UNARY, "unary")) == 0


def test_disabled_sdk_passes_calls_through(
    make_telemetry: Callable[..., hoptel.Telemetry], serve_sync: SyncServe
) -> None:
    """With OTEL_SDK_DISABLED=true the client interceptor calls straight through, adding no metadata."""
    telemetry = make_telemetry(sdk_disabled="true")
    client = sync_client(telemetry, serve_sync(hoptel.server_interceptor(telemetry)))
    try:
        assert "traceparent" not in client.unary(b"metadata").decode()
        assert list(client.server_stream(b"2")) == [b"0", b"1"]
    finally:
        client.channel.close()
    assert sample(telemetry, "grpc_client_started_total", **echo_labels(echo.UNARY, "unary")) == 0
