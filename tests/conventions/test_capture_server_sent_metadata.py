"""HOPTEL_CAPTURE_GRPC_METADATA_SERVER_RESPONSE: the initial metadata a handler sends and an aio abort's trailers.

Real sync and aio servers with hoptel's interceptors on 127.0.0.1; the handlers get a stand-in servicer context
noting what ``send_initial_metadata`` and aio ``abort(..., trailing_metadata)`` send; spans read at the OTLP
receiver. Without the variable the handlers get grpcio's own context, and no attribute is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from support.fixture_types import TelemetryFactory
from support.grpc_servers import aio_grpc_server, sync_grpc_server

import hoptel
from hoptel.interceptors.grpc.aio_context import CountingServicerContext
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

SERVICE = "conventions.test.Sent"
PREFIX = "rpc.grpc.response.metadata."
INITIAL = (
    ("x-tenant", "initial-tenant"),
    ("x-early", "e-1"),
    ("x-early", "e-2"),
    ("x-session-token", "s3cret"),
    ("authorization", "Bearer s3cret"),
    ("x-early-bin", b"\x00\x01"),
    ("x-unlisted", "nope"),
)
TRAILERS = (("x-tenant", "trailing-tenant"), ("x-late", "l-1"))
SETTINGS = {
    "capture_grpc_metadata_server_response": "X-Tenant,x-early.*,x-late,x-session-token,authorization",
    "instrumentation_http_capture_headers_sanitize_fields": "session",
}
INITIAL_ONLY = {"x-tenant": ["initial-tenant"], "x-early": ["e-1", "e-2"], "x-session-token": ["[REDACTED]"]}
BOTH = {**INITIAL_ONLY, "x-tenant": ["initial-tenant", "trailing-tenant"], "x-late": ["l-1"]}
ABORT_TRAILERS = (("x-late", "aborted"), ("x-session-token", "s3cret"), ("authorization", "Bearer s3cret"))
ABORTED = {**INITIAL_ONLY, "x-session-token": ["[REDACTED]", "[REDACTED]"], "x-late": ["aborted"]}
"""An abort's trailers after the initial metadata (both have a sanitized ``x-session-token``)."""


def _metadata(span: ReceivedSpan) -> dict[str, Any]:
    return {key.removeprefix(PREFIX): value for key, value in span.attributes.items() if key.startswith(PREFIX)}


def _server_spans(tel: hoptel.Telemetry, receiver: OTLPReceiver) -> dict[str, ReceivedSpan]:
    assert tel.force_flush()
    return {span.name.rpartition("/")[2]: span for span in receiver.spans() if span.kind == "SERVER"}


def _generic(**methods: Any) -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(SERVICE, methods)


# Sync handlers: initial metadata (with or without trailers), all four shapes.


def _sync_handler(seen: list[Any]) -> grpc.GenericRpcHandler[Any, Any]:
    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        seen.append(context)
        context.send_initial_metadata(INITIAL)
        if request == b"trailers":
            context.set_trailing_metadata(TRAILERS)
        return request

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        seen.append(context)
        yield request  # grpc sends (empty) initial metadata with the first message unless the handler sent it
        context.set_trailing_metadata(TRAILERS)
        yield request

    def stream_sent(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        seen.append(context)
        context.send_initial_metadata(INITIAL)
        yield request
        context.set_trailing_metadata(TRAILERS)
        yield request

    def collect(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        seen.append(context)
        context.send_initial_metadata(INITIAL)
        return b"|".join(requests)

    def chat(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        seen.append(context)
        context.send_initial_metadata(INITIAL)
        assert context.is_active()  # delegated to grpc's
        assert context.time_remaining() is not None
        yield from requests

    def aborts(request: bytes, context: grpc.ServicerContext) -> bytes:
        seen.append(context)
        context.send_initial_metadata(INITIAL)
        context.abort_with_status(_Status(grpc.StatusCode.NOT_FOUND, "gone", ABORT_TRAILERS))
        raise AssertionError("abort_with_status returned")  # pragma: no cover

    return _generic(
        Unary=grpc.unary_unary_rpc_method_handler(unary),
        Stream=grpc.unary_stream_rpc_method_handler(stream),
        StreamSent=grpc.unary_stream_rpc_method_handler(stream_sent),
        Collect=grpc.stream_unary_rpc_method_handler(collect),
        Chat=grpc.stream_stream_rpc_method_handler(chat),
        Aborts=grpc.unary_unary_rpc_method_handler(aborts),
    )


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _call_sync(channel: grpc.Channel, request: bytes = b"ok") -> None:
    assert channel.unary_unary(f"/{SERVICE}/Unary")(request, timeout=10) == request
    assert list(channel.unary_stream(f"/{SERVICE}/Stream")(b"s", timeout=10)) == [b"s", b"s"]
    assert list(channel.unary_stream(f"/{SERVICE}/StreamSent")(b"s", timeout=10)) == [b"s", b"s"]
    assert channel.stream_unary(f"/{SERVICE}/Collect")(iter([b"a", b"b"]), timeout=10) == b"a|b"
    assert list(channel.stream_stream(f"/{SERVICE}/Chat")(iter([b"a", b"b"]), timeout=10)) == [b"a", b"b"]
    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(f"/{SERVICE}/Aborts")(b"x", timeout=10)
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert dict(raised.value.trailing_metadata())["x-late"] == "aborted"  # type: ignore[attr-defined]


def test_sync_server_records_initial_metadata_all_shapes(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Initial metadata, then trailers for the same key; a never-recorded key dropped, a sanitized one redacted."""
    tel = make_telemetry(**SETTINGS)
    seen: list[Any] = []
    server = sync_grpc_server(_sync_handler(seen), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, grpc.insecure_channel(target) as channel:
        _call_sync(channel)
        assert channel.unary_unary(f"/{SERVICE}/Unary")(b"trailers", timeout=10) == b"trailers"
    spans = _server_spans(tel, receiver)
    assert _metadata(spans["Stream"]) == {"x-tenant": ["trailing-tenant"], "x-late": ["l-1"]}
    assert _metadata(spans["StreamSent"]) == BOTH
    assert _metadata(spans["Collect"]) == INITIAL_ONLY
    assert _metadata(spans["Chat"]) == INITIAL_ONLY
    # abort_with_status: its trailers (stored by grpc in the context) follow the initial metadata.
    assert _metadata(spans["Aborts"]) == ABORTED
    unary = [span for span in receiver.spans() if span.kind == "SERVER" and span.name.endswith("/Unary")]
    assert sorted(_metadata(span)["x-tenant"] for span in unary) == [
        ["initial-tenant"],
        ["initial-tenant", "trailing-tenant"],
    ]
    assert all(type(context).__module__.startswith("hoptel.") for context in seen)
    assert all(context.peer().startswith("ipv4:127.0.0.1:") for context in seen)  # delegated


def test_sync_handlers_get_grpc_context_without_the_variable(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Unset: every handler gets grpcio's own servicer context, and no response metadata is recorded."""
    tel = make_telemetry()
    seen: list[Any] = []
    server = sync_grpc_server(_sync_handler(seen), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, grpc.insecure_channel(target) as channel:
        _call_sync(channel)
    assert len(seen) == 6
    assert {type(context) for context in seen} == {grpc._server._Context}
    spans = _server_spans(tel, receiver)
    assert len(spans) == 6
    assert all(_metadata(span) == {} for span in spans.values())


# Aio handlers: coroutine, async generator, context.write(), abort with trailing metadata.


def _aio_handler(seen: list[Any]) -> grpc.GenericRpcHandler[Any, Any]:
    async def unary(request: bytes, context: Any) -> bytes:
        seen.append(context)
        await context.send_initial_metadata(INITIAL)
        if request == b"trailers":
            context.set_trailing_metadata(TRAILERS)
        return request

    async def generator(request: bytes, context: Any) -> AsyncIterator[bytes]:
        seen.append(context)
        await context.send_initial_metadata(INITIAL)
        yield request
        context.set_trailing_metadata(TRAILERS)
        yield request

    async def writer(request: bytes, context: Any) -> None:
        seen.append(context)
        await context.send_initial_metadata(INITIAL)
        await context.write(request)
        context.set_trailing_metadata(TRAILERS)
        await context.write(request)

    async def collect(requests: AsyncIterator[bytes], context: Any) -> bytes:
        seen.append(context)
        await context.send_initial_metadata(INITIAL)
        return b"|".join([request async for request in requests])

    async def chat(requests: Any, context: Any) -> None:
        seen.append(context)
        await context.send_initial_metadata(INITIAL)
        while (request := await context.read()) is not grpc.aio.EOF:
            await context.write(request)

    async def aborts(request: bytes, context: Any) -> bytes:
        seen.append(context)
        await context.send_initial_metadata(INITIAL)
        context.set_trailing_metadata(TRAILERS)  # replaced by the abort's, as grpc sends
        await context.abort(grpc.StatusCode.NOT_FOUND, "gone", ABORT_TRAILERS)

    async def aborts_plain(request: bytes, context: Any) -> bytes:
        seen.append(context)
        context.set_trailing_metadata(TRAILERS)  # an abort without trailers sends these
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no")

    return _generic(
        Unary=grpc.unary_unary_rpc_method_handler(unary),
        Generator=grpc.unary_stream_rpc_method_handler(generator),
        Writer=grpc.unary_stream_rpc_method_handler(writer),
        Collect=grpc.stream_unary_rpc_method_handler(collect),
        Chat=grpc.stream_stream_rpc_method_handler(chat),
        Aborts=grpc.unary_unary_rpc_method_handler(aborts),
        AbortsPlain=grpc.unary_unary_rpc_method_handler(aborts_plain),
    )


async def _call_aio(target: str, trailers: bool = False) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        request = b"trailers" if trailers else b"ok"
        unary = channel.unary_unary(f"/{SERVICE}/Unary")(request, timeout=10)
        assert await unary == request
        assert dict(await unary.initial_metadata())["x-tenant"] == "initial-tenant"  # grpc sent it
        for method in ("Generator", "Writer"):
            replies = [reply async for reply in channel.unary_stream(f"/{SERVICE}/{method}")(b"s", timeout=10)]
            assert replies == [b"s", b"s"]
        assert await channel.stream_unary(f"/{SERVICE}/Collect")(iter([b"a", b"b"]), timeout=10) == b"a|b"
        chat = channel.stream_stream(f"/{SERVICE}/Chat")(iter([b"a", b"b"]), timeout=10)
        assert [reply async for reply in chat] == [b"a", b"b"]
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary(f"/{SERVICE}/Aborts")(b"x", timeout=10)
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND
        assert dict(raised.value.trailing_metadata())["x-late"] == "aborted"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await channel.unary_unary(f"/{SERVICE}/AbortsPlain")(b"x", timeout=10)
        assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_aio_server_records_initial_metadata_and_abort_trailers(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Coroutine, async-generator, write() and reader handlers record initial metadata; abort's trailers too."""
    tel = make_telemetry(**SETTINGS)
    seen: list[Any] = []
    async with aio_grpc_server(_aio_handler(seen), interceptors=[hoptel.aio_server_interceptor(tel)]) as target:
        await _call_aio(target)
        await _call_aio(target, trailers=True)
    spans = _server_spans(tel, receiver)
    assert _metadata(spans["Generator"]) == BOTH
    assert _metadata(spans["Writer"]) == BOTH
    assert _metadata(spans["Collect"]) == INITIAL_ONLY
    assert _metadata(spans["Chat"]) == INITIAL_ONLY
    assert _metadata(spans["Aborts"]) == ABORTED
    assert spans["Aborts"].attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert _metadata(spans["AbortsPlain"]) == {"x-tenant": ["trailing-tenant"], "x-late": ["l-1"]}
    unary = [span for span in receiver.spans() if span.kind == "SERVER" and span.name.endswith("/Unary")]
    assert sorted(_metadata(span)["x-tenant"] for span in unary) == [
        ["initial-tenant"],
        ["initial-tenant", "trailing-tenant"],
    ]
    assert all(isinstance(context, grpc.aio.ServicerContext) for context in seen)
    assert all(type(context).__module__.startswith("hoptel.") for context in seen)
    # The reader/writer handler's messages are still counted through the stand-in (it wraps the counting one).
    received = tel.registry.get_sample_value(
        "grpc_server_msg_received_total",
        {"grpc_type": "bidi_stream", "grpc_service": SERVICE, "grpc_method": "Chat"},
    )
    assert received == 4


async def test_aio_handlers_get_grpc_context_without_the_variable(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Unset: unary-unary handlers get grpcio's own context (streaming ones the counting proxy, as before)."""
    tel = make_telemetry()
    seen: list[Any] = []
    async with aio_grpc_server(_aio_handler(seen), interceptors=[hoptel.aio_server_interceptor(tel)]) as target:
        await _call_aio(target)
    grpc_context = type(seen[0])
    assert grpc_context.__module__ == "grpc._cython.cygrpc"
    kinds = [grpc_context if type(context) is grpc_context else type(context) for context in seen]
    # Unary, Generator, Writer, Collect, Chat, Aborts, AbortsPlain
    assert kinds == [grpc_context, *[CountingServicerContext] * 4, grpc_context, grpc_context]
    spans = _server_spans(tel, receiver)
    assert len(spans) == 7
    assert all(_metadata(span) == {} for span in spans.values())
