"""Interop with the peers: opentelemetry-instrumentation-grpc on the other end, and B3-only hops."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from grpc_support import AioServe, SyncEcho, SyncServe, aio_client, arpc_pair, rpc_pair, sync_client
from opentelemetry.instrumentation import grpc as official
from support import grpc_echo as echo

import hoptel
from hoptel.receiver import OTLPReceiver

OFFICIAL_SCOPE = "opentelemetry.instrumentation.grpc"


def test_official_client_to_hoptel_server(
    telemetry: hoptel.Telemetry, serve_sync: SyncServe, receiver: OTLPReceiver
) -> None:
    """An official-instrumented sync client calling a hoptel server gives one trace."""
    target = serve_sync(hoptel.server_interceptor(telemetry))
    interceptor = official.client_interceptor(tracer_provider=telemetry.tracer_provider)
    channel = official.intercept_channel(grpc.insecure_channel(target), interceptor)  # its own grpcext wrapper
    try:
        assert channel.unary_unary(echo.UNARY)(b"hi") == b"hi"
    finally:
        channel.close()
    client, server = rpc_pair(receiver, echo.UNARY)
    assert client.scope_name == OFFICIAL_SCOPE
    assert server.scope_name == "hoptel"


def test_hoptel_client_to_official_server(
    telemetry: hoptel.Telemetry, serve_sync: SyncServe, receiver: OTLPReceiver
) -> None:
    """A hoptel client calling an official-instrumented sync server gives one trace."""
    target = serve_sync(official.server_interceptor(tracer_provider=telemetry.tracer_provider))
    client = sync_client(telemetry, target)
    try:
        assert list(client.server_stream(b"2")) == [b"0", b"1"]
    finally:
        client.channel.close()
    hoptel_client, official_server = rpc_pair(receiver, echo.SERVER_STREAM)
    assert hoptel_client.scope_name == "hoptel"
    assert official_server.scope_name == OFFICIAL_SCOPE


async def test_official_aio_client_to_hoptel_aio_server(
    telemetry: hoptel.Telemetry, serve_aio: AioServe, receiver: OTLPReceiver
) -> None:
    """An official-instrumented aio client calling a hoptel aio server gives one trace."""
    target = await serve_aio(hoptel.aio_server_interceptor(telemetry))
    interceptors = official.aio_client_interceptors(tracer_provider=telemetry.tracer_provider)
    async with grpc.aio.insecure_channel(target, interceptors=interceptors) as channel:
        assert await channel.unary_unary(echo.UNARY, None, None)(b"hi") == b"hi"
    client, server = await arpc_pair(receiver, echo.UNARY)
    assert (client.scope_name, server.scope_name) == (OFFICIAL_SCOPE, "hoptel")


async def test_hoptel_aio_client_to_official_aio_server(
    telemetry: hoptel.Telemetry, serve_aio: AioServe, receiver: OTLPReceiver
) -> None:
    """A hoptel aio client calling an official-instrumented aio server gives one trace."""
    target = await serve_aio(official.aio_server_interceptor(tracer_provider=telemetry.tracer_provider))
    client = aio_client(telemetry, target)
    try:
        assert [r async for r in client.bidi(iter([b"a", b"b"]))] == [b"a", b"b"]
    finally:
        await client.channel.close()
    hoptel_client, official_server = await arpc_pair(receiver, echo.BIDI)
    assert (hoptel_client.scope_name, official_server.scope_name) == ("hoptel", OFFICIAL_SCOPE)


@pytest.mark.parametrize(
    ("propagators", "carried", "absent"),
    [
        ("b3", {"b3"}, {"traceparent", "x-b3-traceid"}),
        ("b3multi", {"x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}, {"traceparent", "b3"}),
        ("tracecontext", {"traceparent"}, {"b3", "x-b3-traceid"}),
    ],
)
def test_hop_keeps_trace_in_each_format(
    make_telemetry: Callable[..., hoptel.Telemetry],
    serve_sync: SyncServe,
    receiver: OTLPReceiver,
    propagators: str,
    carried: set[str],
    absent: set[str],
) -> None:
    """Two ends that agree on b3, b3multi or tracecontext keep one trace, carried in that format only."""
    telemetry = make_telemetry(propagators=propagators)
    client: SyncEcho = sync_client(telemetry, serve_sync(hoptel.server_interceptor(telemetry)))
    try:
        seen = client.unary(b"metadata").decode().splitlines()
    finally:
        client.channel.close()
    keys = {line.partition("=")[0] for line in seen}
    assert carried <= keys
    assert not absent & keys
    rpc_pair(receiver, echo.UNARY)
