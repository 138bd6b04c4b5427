"""instrument(): plain grpc servers/channels and httpx clients record what the explicit API records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
from support.fixture_types import TelemetryFactory
from support.uvicorn_server import run_uvicorn
from zerocode_support import SERVER_STREAM, UNARY, aio_handler, http_app, metric_digest, span_digest, sync_handler

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

GRPC_METRICS = ("grpc_",)
HTTP_METRICS = ("http_client_",)


def _sync_workload(channel: grpc.Channel) -> None:
    assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    assert list(channel.unary_stream(SERVER_STREAM, None, None)(b"3")) == [b"0", b"1", b"2"]


def _sync_run(make_server: Callable[[], grpc.Server], make_channel: Callable[[str], grpc.Channel]) -> None:
    server = make_server()
    server.add_generic_rpc_handlers([sync_handler()])
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        with make_channel(target) as channel:
            _sync_workload(channel)
    finally:
        server.stop(None).wait(5)


def _spans(receiver: OTLPReceiver, tel: hoptel.Telemetry, count: int) -> list[ReceivedSpan]:
    """All of ``tel``'s spans, exactly ``count`` of them (flushed first, so none can still be on the way)."""
    service = tel.config.service_name
    receiver.wait_for_spans(count, predicate=lambda span: span.service_name == service)
    assert tel.force_flush()
    spans = [span for span in receiver.spans() if span.service_name == service]
    assert len(spans) == count, spans
    return spans


def _check_pairs(spans: list[ReceivedSpan]) -> None:
    """Every SERVER span is the child of a CLIENT span of the same trace."""
    clients = {span.span_id: span for span in spans if span.kind == "CLIENT"}
    for server in (span for span in spans if span.kind == "SERVER"):
        assert clients[server.parent_span_id or ""].trace_id == server.trace_id


def test_plain_sync_grpc_records_what_the_explicit_api_records(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """grpc.server + grpc.insecure_channel under instrument(): the same spans and metrics as with interceptors."""
    explicit, zero = make_telemetry("explicit"), make_telemetry("zero")
    pool = ThreadPoolExecutor(4)
    try:
        _sync_run(
            lambda: grpc.server(pool, interceptors=[hoptel.server_interceptor(explicit)]),
            lambda target: grpc.intercept_channel(
                grpc.insecure_channel(target), hoptel.client_interceptor(explicit, target=target)
            ),
        )
        hoptel.instrument(zero)
        _sync_run(lambda: grpc.server(pool), grpc.insecure_channel)
    finally:
        pool.shutdown(wait=True)
    explicit_spans, zero_spans = _spans(receiver, explicit, 4), _spans(receiver, zero, 4)
    assert span_digest(zero_spans) == span_digest(explicit_spans)
    _check_pairs(zero_spans)
    assert metric_digest(zero, GRPC_METRICS) == metric_digest(explicit, GRPC_METRICS)
    assert metric_digest(zero, GRPC_METRICS)  # not two empty digests


async def _aio_run(interceptors: Callable[[str], Any], server_interceptors: list[Any]) -> None:
    server = grpc.aio.server(interceptors=server_interceptors) if server_interceptors else grpc.aio.server()
    server.add_generic_rpc_handlers([aio_handler()])
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    try:
        channel_interceptors = interceptors(target)
        if channel_interceptors is None:
            channel = grpc.aio.insecure_channel(target)
        else:
            channel = grpc.aio.insecure_channel(target, interceptors=channel_interceptors)
        async with channel:
            assert await channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
            call = channel.unary_stream(SERVER_STREAM, None, None)(b"3")
            assert [response async for response in call] == [b"0", b"1", b"2"]
    finally:
        await server.stop(None)


async def test_plain_aio_grpc_records_what_the_explicit_api_records(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """grpc.aio.server + grpc.aio.insecure_channel under instrument(): the same spans and metrics."""
    explicit, zero = make_telemetry("explicit"), make_telemetry("zero")
    await _aio_run(
        lambda target: hoptel.aio_client_interceptor(explicit, target=target),
        [hoptel.aio_server_interceptor(explicit)],
    )
    hoptel.instrument(zero)
    await _aio_run(lambda target: None, [])
    explicit_spans = await asyncio.to_thread(_spans, receiver, explicit, 4)
    zero_spans = await asyncio.to_thread(_spans, receiver, zero, 4)
    assert span_digest(zero_spans) == span_digest(explicit_spans)
    _check_pairs(zero_spans)
    assert metric_digest(zero, GRPC_METRICS) == metric_digest(explicit, GRPC_METRICS)


async def test_plain_httpx_clients_record_what_the_explicit_api_records(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """httpx.Client() and httpx.AsyncClient() under instrument(): the same spans and metrics as hoptel transports."""
    explicit, zero = make_telemetry("explicit"), make_telemetry("zero")
    with run_uvicorn(http_app()) as base:

        async def workload(sync_client: httpx.Client, async_client: httpx.AsyncClient) -> None:
            with sync_client:
                assert sync_client.get(f"{base}/items/1").status_code == 200
                assert sync_client.get(f"{base}/missing").status_code == 404
            async with async_client:
                assert (await async_client.get(f"{base}/items/2")).status_code == 200

        await workload(
            httpx.Client(transport=hoptel.HTTPTransport(telemetry=explicit)),
            httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=explicit)),
        )
        hoptel.instrument(zero)
        await workload(httpx.Client(), httpx.AsyncClient())
    explicit_spans = await asyncio.to_thread(_spans, receiver, explicit, 3)
    zero_spans = await asyncio.to_thread(_spans, receiver, zero, 3)
    assert span_digest(zero_spans) == span_digest(explicit_spans)
    assert metric_digest(zero, HTTP_METRICS) == metric_digest(explicit, HTTP_METRICS)
    assert len(metric_digest(zero, HTTP_METRICS)) == 2  # 200 and 404
