"""Never two spans per hop: instrument() twice, hops the app instrumented itself, the official instrumentations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
from opentelemetry.instrumentation import grpc as official_grpc
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from support.fixture_types import TelemetryFactory
from support.grpc_servers import aio_grpc_server
from support.log_records import LogRecords
from support.uvicorn_server import run_uvicorn
from zerocode_support import UNARY, aio_handler, http_app, sync_handler

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

Serve = Callable[..., str]
OFFICIAL_GRPC = "opentelemetry.instrumentation.grpc"


def _all_spans(receiver: OTLPReceiver, tel: hoptel.Telemetry, at_least: int) -> list[ReceivedSpan]:
    """Every span so far, once ``at_least`` arrived and ``tel`` flushed (so none is still on its way)."""
    receiver.wait_for_spans(at_least)
    assert tel.force_flush()
    return receiver.spans()


def _kinds(spans: list[ReceivedSpan]) -> list[tuple[str, str]]:
    return sorted((span.kind, span.scope_name) for span in spans)


def test_instrument_twice_gives_one_span_per_hop(
    telemetry: hoptel.Telemetry, plain_server: Serve, receiver: OTLPReceiver
) -> None:
    """instrument() called twice: one CLIENT and one SERVER span for an RPC, and for an HTTP request to an ASGI app."""
    hoptel.instrument()
    hoptel.instrument(telemetry)
    target = plain_server()
    with grpc.insecure_channel(target) as channel:
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    with run_uvicorn(http_app()) as base, httpx.Client() as client:
        assert client.get(f"{base}/items/1").status_code == 200
    spans = _all_spans(receiver, telemetry, 4)
    assert _kinds(spans) == [("CLIENT", "hoptel")] * 2 + [("SERVER", "hoptel")] * 2


def test_hops_the_app_instrumented_are_not_instrumented_again(
    telemetry: hoptel.Telemetry, plain_server: Serve, receiver: OTLPReceiver
) -> None:
    """Explicit hoptel interceptors and transports under instrument(): still one span per hop.

    The plain ASGI app serving the HTTP requests gets its SERVER spans from zero-code.
    """
    hoptel.instrument(telemetry)
    target = plain_server(interceptors=[hoptel.server_interceptor(telemetry)])
    with grpc.intercept_channel(grpc.insecure_channel(target), hoptel.client_interceptor(telemetry)) as channel:
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    with run_uvicorn(http_app()) as base:
        with httpx.Client(transport=hoptel.HTTPTransport(telemetry=telemetry)) as client:
            assert client.get(f"{base}/items/1").status_code == 200
        with hoptel.instrument_httpx(httpx.Client(), telemetry) as client:
            assert client.get(f"{base}/items/2").status_code == 200
    spans = _all_spans(receiver, telemetry, 6)
    assert _kinds(spans) == [("CLIENT", "hoptel")] * 3 + [("SERVER", "hoptel")] * 3


def test_a_zero_code_channel_deep_in_a_chain_steps_aside(
    telemetry: hoptel.Telemetry, plain_server: Serve, receiver: OTLPReceiver
) -> None:
    """intercept_channel(intercept_channel(plain channel, other), hoptel's): the app's hoptel interceptor records."""

    class Tagging(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]  # generic in grpc-stubs only
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            return continuation(details, request)

    hoptel.instrument(telemetry)
    target = plain_server()
    inner = grpc.intercept_channel(grpc.insecure_channel(target), Tagging())
    with grpc.intercept_channel(inner, hoptel.client_interceptor(telemetry, target=target)) as channel:
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    spans = _all_spans(receiver, telemetry, 2)
    assert _kinds(spans) == [("CLIENT", "hoptel"), ("SERVER", "hoptel")]


def test_an_instrumented_channel_under_instrument_records_once(
    telemetry: hoptel.Telemetry, plain_server: Serve, receiver: OTLPReceiver
) -> None:
    """hoptel.instrument_channel on a zero-code channel: the zero-code one steps aside, one CLIENT span."""
    hoptel.instrument(telemetry)
    target = plain_server()
    zero_code = grpc.insecure_channel(target)
    with hoptel.instrument_channel(zero_code, telemetry) as channel:
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    spans = _all_spans(receiver, telemetry, 2)
    assert _kinds(spans) == [("CLIENT", "hoptel"), ("SERVER", "hoptel")]


async def test_an_instrumented_aio_channel_under_instrument_records_once(
    telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """hoptel.instrument_aio_channel on a zero-code aio channel returns it as it is: one CLIENT span."""
    hoptel.instrument(telemetry)
    async with aio_grpc_server(aio_handler()) as target:
        zero_code = grpc.aio.insecure_channel(target)
        channel = hoptel.instrument_aio_channel(zero_code, telemetry)
        assert channel is zero_code
        async with channel:
            assert await channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    spans = await asyncio.to_thread(_all_spans, receiver, telemetry, 2)
    assert _kinds(spans) == [("CLIENT", "hoptel"), ("SERVER", "hoptel")]


async def test_aio_channels_and_servers_the_app_instrumented(
    telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """grpc.aio with explicit hoptel interceptors under instrument(): one span per side."""
    hoptel.instrument(telemetry)
    async with aio_grpc_server(aio_handler(), interceptors=[hoptel.aio_server_interceptor(telemetry)]) as target:
        interceptors: Any = hoptel.aio_client_interceptor(
            telemetry
        )  # grpc-stubs want a list; grpc.aio takes any sequence
        async with grpc.aio.insecure_channel(target, interceptors=interceptors) as channel:
            assert await channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    spans = await asyncio.to_thread(_all_spans, receiver, telemetry, 2)
    assert _kinds(spans) == [("CLIENT", "hoptel"), ("SERVER", "hoptel")]


def test_official_instrumentation_first_hoptel_stays_out(
    telemetry: hoptel.Telemetry, plain_server: Serve, receiver: OTLPReceiver
) -> None:
    """Official gRPC and httpx instrumentors active, then instrument(): nothing of theirs patched, one warning each."""
    provider = telemetry.tracer_provider
    GrpcInstrumentorServer().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]  # untyped package
    GrpcInstrumentorClient().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]  # untyped package
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    official_server, official_channel = grpc.server, grpc.insecure_channel
    with LogRecords("hoptel.instrument") as logs:
        hoptel.instrument(telemetry)
        assert (grpc.server, grpc.insecure_channel) == (official_server, official_channel)
        for _ in range(2):
            target = plain_server()
            with grpc.insecure_channel(target) as channel:
                assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
        with run_uvicorn(http_app()) as base, httpx.Client() as client:
            assert client.get(f"{base}/items/1").status_code == 200
    spans = _all_spans(receiver, telemetry, 6)
    # the ASGI app's SERVER span is hoptel's: no official instrumentation traces it
    assert {span.scope_name for span in spans} == {OFFICIAL_GRPC, "opentelemetry.instrumentation.httpx", "hoptel"}
    assert [span.kind for span in spans if span.scope_name == "hoptel"] == ["SERVER"]
    assert len(spans) == 6
    warnings = logs.messages()
    assert len(warnings) == 3, warnings
    assert all("official OpenTelemetry instrumentation is active" in message for message in warnings)


def test_official_instrumentation_later_hoptel_gives_way(
    telemetry: hoptel.Telemetry, plain_server: Serve, receiver: OTLPReceiver
) -> None:
    """instrument() first, official instrumentors after: servers and channels made then get only the official span."""
    provider = telemetry.tracer_provider
    with LogRecords("hoptel.instrument") as logs:
        hoptel.instrument(telemetry)
        GrpcInstrumentorServer().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]  # untyped package
        GrpcInstrumentorClient().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]  # untyped package
        for _ in range(2):
            target = plain_server()
            with grpc.insecure_channel(target) as channel:
                assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    spans = _all_spans(receiver, telemetry, 4)
    assert _kinds(spans) == [("CLIENT", OFFICIAL_GRPC)] * 2 + [("SERVER", OFFICIAL_GRPC)] * 2
    assert len(logs.messages()) == 2  # grpc.server and grpc channels, once each


def test_an_official_interceptor_the_app_passed_is_left_alone(
    telemetry: hoptel.Telemetry, plain_server: Serve, receiver: OTLPReceiver
) -> None:
    """grpc.server(pool, interceptors=[official]) under instrument(): only the official SERVER span."""
    hoptel.instrument(telemetry)
    with LogRecords("hoptel.instrument") as logs:
        official = official_grpc.server_interceptor(tracer_provider=telemetry.tracer_provider)  # type: ignore[no-untyped-call]  # untyped package
        target = plain_server(interceptors=[official])
    with grpc.insecure_channel(target) as channel:
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    spans = _all_spans(receiver, telemetry, 2)
    assert _kinds(spans) == [("CLIENT", "hoptel"), ("SERVER", OFFICIAL_GRPC)]
    assert len(logs.messages()) == 1


def test_export_and_receiver_are_never_instrumented(make_telemetry: TelemetryFactory, plain_server: Serve) -> None:
    """instrument() before the receiver and setup(): the OTLP export calls and the receiver record no spans."""
    hoptel.instrument()
    with OTLPReceiver() as receiver:
        tel = make_telemetry(exporter_otlp_endpoint=receiver.grpc_endpoint)
        target = plain_server()
        with grpc.insecure_channel(target) as channel:
            assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
        spans = _all_spans(receiver, tel, 2)
        assert tel.force_flush()  # an export after the spans above: would add spans if exports were traced
        assert _kinds(receiver.spans()) == [("CLIENT", "hoptel"), ("SERVER", "hoptel")]
        assert {span.name for span in spans} == {UNARY.lstrip("/")}
        started = [s for f in tel.registry.collect() for s in f.samples if s.name == "grpc_client_started_total"]
        assert {sample.labels["grpc_service"] for sample in started} == {"zerocode.test.Echo"}


def test_interceptors_passed_positionally_are_kept(telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """grpc.server(pool, None, [mine]): hoptel's interceptor goes first, the application's still runs."""
    seen: list[str] = []

    class Counting(grpc.ServerInterceptor):  # type: ignore[type-arg]  # generic in grpc-stubs only
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            seen.append(details.method)
            return continuation(details)

    hoptel.instrument(telemetry)
    with ThreadPoolExecutor(2) as pool:
        server = grpc.server(pool, None, [Counting()])
        server.add_generic_rpc_handlers([sync_handler()])
        target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        server.start()
        try:
            with grpc.insecure_channel(target) as channel:
                assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
        finally:
            server.stop(None).wait(5)
    assert seen == [UNARY]
    spans = _all_spans(receiver, telemetry, 2)
    assert _kinds(spans) == [("CLIENT", "hoptel"), ("SERVER", "hoptel")]
