"""HOPTEL_CAPTURE_GRPC_METADATA_{SERVER,CLIENT}_RESPONSE: response metadata as ``rpc.grpc.response.metadata.<key>``.

Real sync and aio servers with hoptel's interceptors whose handlers set trailing metadata; clients both ways
(interceptor and instrumented channel); spans read at the OTLP receiver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from support.fixture_types import TelemetryFactory
from support.grpc_servers import aio_grpc_server, sync_grpc_server

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

SERVICE = "conventions.test.Trailers"
UNARY = f"/{SERVICE}/Unary"
STREAM = f"/{SERVICE}/Stream"
WRITER = f"/{SERVICE}/Writer"
WAYS = ("interceptor", "channel")
PREFIX = "rpc.grpc.response.metadata."
TRAILERS = (
    ("x-tenant", "acme"),
    ("x-request-id", "r-1"),
    ("x-request-id", "r-2"),
    ("x-session-token", "s3cret"),
    ("authorization", "Bearer s3cret"),
    ("x-trace-bin", b"\x00\x01"),
)
INITIAL = (("x-initial", "early"),)
SETTINGS = {
    "capture_grpc_metadata_server_response": (
        "X-Tenant,x-request-.*,x-session-token,authorization,x-trace-bin,x-initial"
    ),
    "instrumentation_http_capture_headers_sanitize_fields": "session",
}
EXPECTED = {"x-tenant": ["acme"], "x-request-id": ["r-1", "r-2"], "x-session-token": ["[REDACTED]"]}


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.send_initial_metadata(INITIAL)
    context.set_trailing_metadata(TRAILERS)
    if request == b"abort":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    return request


def _stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    context.send_initial_metadata(INITIAL)
    yield request
    context.set_trailing_metadata(TRAILERS)
    yield request


async def _aio_unary(request: bytes, context: Any) -> bytes:
    await context.send_initial_metadata(INITIAL)
    context.set_trailing_metadata(TRAILERS)
    return request


async def _aio_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    await context.send_initial_metadata(INITIAL)
    yield request
    context.set_trailing_metadata(TRAILERS)
    yield request


async def _aio_writer(request: bytes, context: Any) -> None:
    await context.write(request)
    context.set_trailing_metadata(TRAILERS)
    await context.write(request)


def _handler(unary: Any, stream: Any, writer: Any = None) -> grpc.GenericRpcHandler[Any, Any]:
    methods = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
    }
    if writer is not None:
        methods["Writer"] = grpc.unary_stream_rpc_method_handler(writer)
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def _metadata(span: ReceivedSpan) -> dict[str, Any]:
    return {key.removeprefix(PREFIX): value for key, value in span.attributes.items() if key.startswith(PREFIX)}


def _server_spans(tel: hoptel.Telemetry, receiver: OTLPReceiver) -> list[ReceivedSpan]:
    assert tel.force_flush()
    return sorted((span for span in receiver.spans() if span.kind == "SERVER"), key=lambda span: span.name)


def _sync_channel(target: str, tel: hoptel.Telemetry, way: str) -> grpc.Channel:
    if way == "channel":
        return hoptel.instrument_channel(grpc.insecure_channel(target), tel, target=target)
    return grpc.intercept_channel(grpc.insecure_channel(target), hoptel.client_interceptor(tel, target=target))


@pytest.mark.parametrize("way", WAYS)
def test_sync_server_records_trailing_metadata(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """A sync server records the trailers its unary and streaming handlers set: sanitized, no authorization, no -bin."""
    tel = make_telemetry(**SETTINGS)
    server = sync_grpc_server(_handler(_unary, _stream), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, _sync_channel(target, tel, way) as channel:
        assert channel.unary_unary(UNARY)(b"ok", timeout=10) == b"ok"
        assert list(channel.unary_stream(STREAM)(b"s", timeout=10)) == [b"s", b"s"]
    spans = _server_spans(tel, receiver)
    assert [span.name for span in spans] == [f"{SERVICE}/Stream", f"{SERVICE}/Unary"]
    for span in spans:
        # The initial metadata the handler sent, then its trailers.
        assert _metadata(span) == CLIENT_EXPECTED


def test_sync_server_records_trailing_metadata_of_an_aborted_rpc(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Trailers set before ``context.abort`` are recorded on the failed span."""
    tel = make_telemetry(**SETTINGS)
    server = sync_grpc_server(_handler(_unary, _stream), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, grpc.insecure_channel(target) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(UNARY)(b"abort", timeout=10)
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    (span,) = _server_spans(tel, receiver)
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert _metadata(span) == CLIENT_EXPECTED


@pytest.mark.parametrize("way", WAYS)
async def test_aio_server_records_trailing_metadata(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """An aio server records the trailers its coroutine, async-generator and ``context.write()`` handlers set."""
    tel = make_telemetry(**SETTINGS)
    handler = _handler(_aio_unary, _aio_stream, _aio_writer)
    async with aio_grpc_server(handler, interceptors=[hoptel.aio_server_interceptor(tel)]) as target:
        if way == "channel":
            channel = hoptel.instrument_aio_channel(grpc.aio.insecure_channel(target), tel, target=target)
        else:
            interceptors = hoptel.aio_client_interceptors(tel, target=target)
            channel = grpc.aio.insecure_channel(target, interceptors=interceptors)
        try:
            assert await channel.unary_unary(UNARY)(b"ok", timeout=10) == b"ok"
            assert [reply async for reply in channel.unary_stream(STREAM)(b"s", timeout=10)] == [b"s", b"s"]
            assert [reply async for reply in channel.unary_stream(WRITER)(b"w", timeout=10)] == [b"w", b"w"]
        finally:
            await channel.close()
    spans = _server_spans(tel, receiver)
    assert [span.name for span in spans] == [f"{SERVICE}/Stream", f"{SERVICE}/Unary", f"{SERVICE}/Writer"]
    for span in spans:  # the writer sends no initial metadata
        assert _metadata(span) == (EXPECTED if span.name.endswith("/Writer") else CLIENT_EXPECTED)


def test_no_response_metadata_is_recorded_by_default(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """Without the variable no response metadata value goes on a span, and the handlers are wrapped as before."""
    tel = make_telemetry()
    server = sync_grpc_server(_handler(_unary, _stream), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, hoptel.instrument_channel(grpc.insecure_channel(target), tel) as channel:
        assert channel.unary_unary(UNARY)(b"ok", timeout=10) == b"ok"
        assert list(channel.unary_stream(STREAM)(b"s", timeout=10)) == [b"s", b"s"]
    assert tel.force_flush()
    assert len(receiver.spans()) == 4
    for span in receiver.spans():
        assert _metadata(span) == {}


CLIENT_SETTINGS = {
    "capture_grpc_metadata_client_response": (
        "x-tenant,x-request-.*,x-session-token,authorization,x-trace-bin,x-initial"
    ),
    "instrumentation_http_capture_headers_sanitize_fields": "session",
}
CLIENT_EXPECTED = {"x-initial": ["early"], **EXPECTED}
COLLECT = f"/{SERVICE}/Collect"


def _collect(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    joined = b"|".join(requests)
    return _unary(joined, context)


def _client_handler() -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
            "Collect": grpc.stream_unary_rpc_method_handler(_collect),
        },
    )


@pytest.mark.parametrize("way", WAYS)
def test_sync_client_records_response_metadata_of_unary_responses(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """Blocking, with_call, future, failed and client-streaming calls record initial then trailing metadata."""
    tel = make_telemetry(**CLIENT_SETTINGS)
    with sync_grpc_server(_client_handler()) as target, _sync_channel(target, tel, way) as channel:
        unary = channel.unary_unary(UNARY)
        assert unary(b"ok", timeout=10) == b"ok"
        assert unary.with_call(b"ok", timeout=10)[0] == b"ok"
        assert unary.future(b"ok", timeout=10).result() == b"ok"
        with pytest.raises(grpc.RpcError):
            unary(b"abort", timeout=10)
        assert channel.stream_unary(COLLECT)(iter([b"a", b"b"]), timeout=10) == b"a|b"
    assert tel.force_flush()
    spans = [span for span in receiver.spans() if span.kind == "CLIENT"]
    assert len(spans) == 5
    for span in spans:
        assert _metadata(span) == CLIENT_EXPECTED, span.name


@pytest.mark.parametrize("way", WAYS)
def test_sync_client_records_response_metadata_of_response_streams(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """A response stream records the server's initial and trailing metadata too, before its hop ends."""
    tel = make_telemetry(**CLIENT_SETTINGS)
    with sync_grpc_server(_client_handler()) as target, _sync_channel(target, tel, way) as channel:
        assert list(channel.unary_stream(STREAM)(b"s", timeout=10)) == [b"s", b"s"]
    assert tel.force_flush()
    (span,) = receiver.spans()
    assert _metadata(span) == CLIENT_EXPECTED
