"""HOPTEL_CAPTURE_GRPC_METADATA_CLIENT_RESPONSE on grpc.aio clients: the server's response metadata on CLIENT spans.

Real aio servers on loopback whose handlers send initial metadata and set trailing metadata; aio clients both ways
(``aio_client_interceptors()`` and ``instrument_aio_channel()``), all four shapes; spans read at the OTLP receiver.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import pytest
from support.fixture_types import TelemetryFactory
from support.grpc_servers import aio_grpc_server

import hoptel
from hoptel.interceptors.grpc import aio_channel, aio_client
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

if TYPE_CHECKING:
    _UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    _UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor

SERVICE = "conventions.test.AioTrailers"
WAYS = ("interceptor", "channel")
PREFIX = "rpc.grpc.response.metadata."
INITIAL = (("x-initial", "early"), ("cookie", "c=1"))
TRAILERS = (
    ("x-tenant", "acme"),
    ("x-request-id", "r-1"),
    ("x-request-id", "r-2"),
    ("x-session-token", "s3cret"),
    ("authorization", "Bearer s3cret"),
    ("x-trace-bin", b"\x00\x01"),
)
SETTINGS = {
    "capture_grpc_metadata_client_response": (
        "x-initial,X-Tenant,x-request-.*,x-session-token,authorization,cookie,x-trace-bin"
    ),
    "instrumentation_http_capture_headers_sanitize_fields": "session",
}
# Initial then trailing; authorization and cookie (never recorded) and the -bin value are dropped.
EXPECTED = {
    "x-initial": ["early"],
    "x-tenant": ["acme"],
    "x-request-id": ["r-1", "r-2"],
    "x-session-token": ["[REDACTED]"],
}


async def _unary(request: bytes, context: Any) -> bytes:
    await context.send_initial_metadata(INITIAL)
    context.set_trailing_metadata(TRAILERS)
    if request == b"abort":
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    return request


async def _stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    await context.send_initial_metadata(INITIAL)
    yield request
    context.set_trailing_metadata(TRAILERS)
    yield request


async def _collect(requests: AsyncIterable[bytes], context: Any) -> bytes:
    return await _unary(b"|".join([request async for request in requests]), context)


async def _echo(requests: AsyncIterable[bytes], context: Any) -> AsyncIterator[bytes]:
    await context.send_initial_metadata(INITIAL)
    async for request in requests:
        yield request
    context.set_trailing_metadata(TRAILERS)


def _handler() -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
            "Collect": grpc.stream_unary_rpc_method_handler(_collect),
            "Echo": grpc.stream_stream_rpc_method_handler(_echo),
        },
    )


def _channel(target: str, tel: hoptel.Telemetry, way: str) -> grpc.aio.Channel:
    if way == "channel":
        return hoptel.instrument_aio_channel(grpc.aio.insecure_channel(target), tel, target=target)
    return grpc.aio.insecure_channel(target, interceptors=hoptel.aio_client_interceptors(tel, target=target))


def _metadata(span: ReceivedSpan) -> dict[str, Any]:
    return {key.removeprefix(PREFIX): value for key, value in span.attributes.items() if key.startswith(PREFIX)}


def _client_spans(tel: hoptel.Telemetry, receiver: OTLPReceiver) -> dict[str, ReceivedSpan]:
    assert tel.force_flush()
    spans = [span for span in receiver.spans() if span.kind == "CLIENT"]
    named = {span.name.rpartition("/")[2]: span for span in spans}
    assert len(named) == len(spans)
    return named


async def _requests(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


@pytest.mark.parametrize("way", WAYS)
async def test_aio_client_records_response_metadata_of_all_shapes(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """Unary-unary, unary-stream, stream-unary and stream-stream record initial then trailing metadata."""
    tel = make_telemetry(**SETTINGS)
    async with aio_grpc_server(_handler()) as target:
        channel = _channel(target, tel, way)
        try:
            assert await channel.unary_unary(f"/{SERVICE}/Unary")(b"ok", timeout=10) == b"ok"
            stream = channel.unary_stream(f"/{SERVICE}/Stream")(b"s", timeout=10)
            assert [reply async for reply in stream] == [b"s", b"s"]
            collect = channel.stream_unary(f"/{SERVICE}/Collect")
            assert await collect(_requests(b"a", b"b"), timeout=10) == b"a|b"
            echo = channel.stream_stream(f"/{SERVICE}/Echo")(_requests(b"x", b"y"), timeout=10)
            assert [reply async for reply in echo] == [b"x", b"y"]
        finally:
            await channel.close()
    spans = _client_spans(tel, receiver)
    assert sorted(spans) == ["Collect", "Echo", "Stream", "Unary"]
    for name, span in spans.items():
        assert _metadata(span) == EXPECTED, name
        assert span.attributes["rpc.grpc.status_code"] == 0


@pytest.mark.parametrize("way", WAYS)
async def test_aio_client_records_trailing_metadata_of_a_failed_rpc(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """A NOT_FOUND call still records the initial metadata and the trailers the server set before aborting."""
    tel = make_telemetry(**SETTINGS)
    async with aio_grpc_server(_handler()) as target:
        channel = _channel(target, tel, way)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await channel.unary_unary(f"/{SERVICE}/Unary")(b"abort", timeout=10)
            assert raised.value.code() is grpc.StatusCode.NOT_FOUND
        finally:
            await channel.close()
    span = _client_spans(tel, receiver)["Unary"]
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert _metadata(span) == EXPECTED


async def test_aio_client_records_metadata_an_inner_interceptor_s_error_carries(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """An inner interceptor that awaits the call hands hoptel the ``AioRpcError``: its metadata is recorded."""

    class AwaitingInterceptor(_UnaryUnaryInterceptor):
        async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
            call = await continuation(client_call_details, request)
            await call  # raises the AioRpcError of a failed call
            return call

    tel = make_telemetry(**SETTINGS)
    async with aio_grpc_server(_handler()) as target:
        interceptors = [*hoptel.aio_client_interceptors(tel, target=target), AwaitingInterceptor()]
        channel = grpc.aio.insecure_channel(target, interceptors=interceptors)
        try:
            assert await channel.unary_unary(f"/{SERVICE}/Unary")(b"ok", timeout=10) == b"ok"
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary(f"/{SERVICE}/Unary")(b"abort", timeout=10)
        finally:
            await channel.close()
    assert tel.force_flush()
    spans = [span for span in receiver.spans() if span.kind == "CLIENT"]
    assert sorted(span.attributes["rpc.grpc.status_code"] for span in spans) == [0, 5]
    for span in spans:
        assert _metadata(span) == EXPECTED


@pytest.mark.parametrize("way", WAYS)
async def test_aio_client_records_no_response_metadata_by_default(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """Without the variable no response metadata goes on a span, and the default objects are built."""
    tel = make_telemetry()
    if way == "channel":
        built = hoptel.instrument_aio_channel(grpc.aio.insecure_channel("127.0.0.1:1"), tel)
        assert type(built) is aio_channel.InstrumentedAioChannel
    else:
        kinds = {type(kind) for kind in hoptel.aio_client_interceptor(tel)}
        assert kinds == {
            aio_client._UnaryUnaryOnly,
            aio_client._UnaryStreamOnly,
            aio_client._StreamUnaryOnly,
            aio_client._StreamStreamOnly,
        }
    await built.close() if way == "channel" else None
    async with aio_grpc_server(_handler()) as target:
        channel = _channel(target, tel, way)
        try:
            assert await channel.unary_unary(f"/{SERVICE}/Unary")(b"ok", timeout=10) == b"ok"
            stream = channel.unary_stream(f"/{SERVICE}/Stream")(b"s", timeout=10)
            assert [reply async for reply in stream] == [b"s", b"s"]
        finally:
            await channel.close()
    spans = _client_spans(tel, receiver)
    assert sorted(spans) == ["Stream", "Unary"]
    for span in spans.values():
        assert _metadata(span) == {}


@pytest.mark.parametrize("way", WAYS)
async def test_capturing_aio_client_is_built_only_when_asked_for(make_telemetry: TelemetryFactory, way: str) -> None:
    """With the variable set, the capturing variants are built (and the channel still steps aside for hoptel's)."""
    tel = make_telemetry(**SETTINGS)
    if way == "channel":
        built = hoptel.instrument_aio_channel(grpc.aio.insecure_channel("127.0.0.1:1"), tel)
        assert type(built) is aio_channel._CapturingAioChannel
        await built.close()
    else:
        kinds = [type(kind) for kind in hoptel.aio_client_interceptor(tel)]
        assert all(issubclass(kind, aio_client._CapturingCore) for kind in kinds)
        channel = grpc.aio.insecure_channel("127.0.0.1:1", interceptors=hoptel.aio_client_interceptors(tel))
        assert hoptel.instrument_aio_channel(channel, tel) is channel  # already recorded: not twice
        await channel.close()
