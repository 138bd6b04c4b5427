"""grpc.aio client and server interceptors: spans, status paths, cancellation, deadlines, call objects.

Streaming handlers run in both styles grpc.aio offers (async generators, and ``context.read()/write()``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_support import AioEcho, arpc_pair, arpc_spans, echo_labels, sample
from support import grpc_echo as echo

import hoptel
from hoptel.receiver import OTLPReceiver

CANCELLED = grpc.StatusCode.CANCELLED.value[0]


async def test_unary_client_and_server_spans(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """An aio unary RPC gives a CLIENT span and a SERVER span child of it, with the default attributes."""
    assert await aio_echo.unary(b"hello") == b"hello"
    client, server = await arpc_pair(receiver, echo.UNARY)
    assert (client.kind, server.kind) == ("CLIENT", "SERVER")
    for span in (client, server):
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.service"] == "hoptel.test.Echo"
        assert span.attributes["rpc.method"] == "Unary"
        assert span.attributes["rpc.grpc.status_code"] == 0
        assert span.status_code == "UNSET"
    assert client.attributes["server.port"] == int(aio_echo.target.rsplit(":", 1)[1])
    assert server.attributes["network.peer.address"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (b"abort", grpc.StatusCode.NOT_FOUND),
        (b"set_code", grpc.StatusCode.INVALID_ARGUMENT),
        (b"raise", grpc.StatusCode.UNKNOWN),
    ],
)
async def test_unary_status_paths(
    aio_echo: AioEcho, receiver: OTLPReceiver, command: bytes, code: grpc.StatusCode
) -> None:
    """abort(), set_code() and a raise set both spans' code; the server errs and records the raise only."""
    with pytest.raises(grpc.RpcError) as raised:
        await aio_echo.unary(command)
    assert raised.value.code() is code
    client, server = await arpc_pair(receiver, echo.UNARY)
    assert client.attributes["rpc.grpc.status_code"] == code.value[0]
    assert server.attributes["rpc.grpc.status_code"] == code.value[0]
    assert client.status_code == "ERROR"
    assert server.status_code == ("ERROR" if code is grpc.StatusCode.UNKNOWN else "UNSET")
    exceptions = [event for event in server.events if event.name == "exception"]
    assert len(exceptions) == (command == b"raise")


async def _run(client: AioEcho, shape: str, requests: bytes | list[bytes]) -> object:
    if shape == "server_stream":
        return [response async for response in client.server_stream(requests)]
    if shape == "client_stream":
        return await client.client_stream(iter(requests))
    return [response async for response in client.bidi(iter(requests))]


@pytest.mark.parametrize(
    ("shape", "requests", "code"),
    [
        ("server_stream", b"2 abort", grpc.StatusCode.NOT_FOUND),
        ("server_stream", b"2 raise", grpc.StatusCode.UNKNOWN),
        ("server_stream", b"2 set_code", grpc.StatusCode.INVALID_ARGUMENT),
        ("client_stream", [b"a", b"abort"], grpc.StatusCode.NOT_FOUND),
        ("client_stream", [b"a", b"raise"], grpc.StatusCode.UNKNOWN),
        ("bidi", [b"a", b"abort"], grpc.StatusCode.NOT_FOUND),
        ("bidi", [b"a", b"raise"], grpc.StatusCode.UNKNOWN),
        ("bidi", [b"a", b"set_code"], grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_streaming_status_paths(
    aio_echo: AioEcho, receiver: OTLPReceiver, shape: str, requests: bytes | list[bytes], code: grpc.StatusCode
) -> None:
    """Streaming aio RPCs end with the handler's status on both spans, one exception event if it raised."""
    with pytest.raises(grpc.RpcError) as raised:
        await _run(aio_echo, shape, requests)
    assert raised.value.code() is code
    method = {"server_stream": echo.SERVER_STREAM, "client_stream": echo.CLIENT_STREAM, "bidi": echo.BIDI}[shape]
    client, server = await arpc_pair(receiver, method)
    assert client.attributes["rpc.grpc.status_code"] == code.value[0]
    assert server.attributes["rpc.grpc.status_code"] == code.value[0]
    assert len([event for event in server.events if event.name == "exception"]) == (code is grpc.StatusCode.UNKNOWN)


async def test_streams_count_messages(aio_echo: AioEcho, receiver: OTLPReceiver, telemetry: hoptel.Telemetry) -> None:
    """Each aio streaming shape is one span per side; msg counters hold the messages moved, in either style."""

    async def requests() -> AsyncIterator[bytes]:
        for request in (b"a", b"b", b"c", b"d"):
            yield request

    assert [r async for r in aio_echo.server_stream(b"3")] == [b"0", b"1", b"2"]
    assert await aio_echo.client_stream(requests()) == b"a|b|c|d"
    assert [r async for r in aio_echo.bidi(iter([b"x", b"y"]))] == [b"x", b"y"]
    for method in (echo.SERVER_STREAM, echo.CLIENT_STREAM, echo.BIDI):
        await arpc_pair(receiver, method)
    expected = {
        ("server_stream", echo.SERVER_STREAM): (1, 3),
        ("client_stream", echo.CLIENT_STREAM): (4, 1),
        ("bidi_stream", echo.BIDI): (2, 2),
    }
    for (rpc_type, method), (sent, received) in expected.items():
        labels = echo_labels(method, rpc_type)
        assert sample(telemetry, "grpc_client_msg_sent_total", **labels) == sent
        assert sample(telemetry, "grpc_client_msg_received_total", **labels) == received
        assert sample(telemetry, "grpc_server_msg_received_total", **labels) == sent
        assert sample(telemetry, "grpc_server_msg_sent_total", **labels) == received


async def test_server_span_current_in_handler(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """The SERVER span is current in the handler's task, and while a stream handler produces each response."""
    assert (await aio_echo.unary(b"span")).decode() == (await arpc_pair(receiver, echo.UNARY))[1].span_id
    *_, seen = [r async for r in aio_echo.server_stream(b"1 span")]
    assert seen.decode() == (await arpc_pair(receiver, echo.SERVER_STREAM))[1].span_id


async def test_client_keeps_caller_metadata(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """The caller's metadata reaches the aio server unchanged, next to the injected traceparent."""
    seen = (await aio_echo.unary(b"metadata", metadata=(("x-tenant", "blue"),))).decode().splitlines()
    assert "x-tenant=blue" in seen
    client, _ = await arpc_pair(receiver, echo.UNARY)
    (traceparent,) = [line for line in seen if line.startswith("traceparent=")]
    assert traceparent.split("-")[1:3] == [client.trace_id, client.span_id]


async def test_deadline_exceeded(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """An expiring deadline ends both aio spans DEADLINE_EXCEEDED, an error on each side."""
    with pytest.raises(grpc.RpcError) as raised:
        await aio_echo.unary(b"wait", timeout=0.3)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    client, server = await arpc_pair(receiver, echo.UNARY)
    for span in (client, server):
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
        assert span.status_code == "ERROR"


async def test_streaming_deadline_exceeded(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """A deadline that expires mid-stream ends both spans DEADLINE_EXCEEDED."""
    call = aio_echo.server_stream(b"1 wait", timeout=0.3)
    with pytest.raises(grpc.RpcError) as raised:
        await _drain(call)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    client, server = await arpc_pair(receiver, echo.SERVER_STREAM)
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


async def _drain(call: AsyncIterator[bytes]) -> list[bytes]:
    return [response async for response in call]


async def test_cancel_mid_stream(aio_echo: AioEcho, receiver: OTLPReceiver, telemetry: hoptel.Telemetry) -> None:
    """Cancelling an aio response stream mid-way cancels the RPC and ends both spans CANCELLED."""
    call = aio_echo.server_stream(b"3 wait")
    responses = call.__aiter__()
    assert [await responses.__anext__(), await responses.__anext__()] == [b"0", b"1"]
    assert call.cancel()
    assert await call.code() is grpc.StatusCode.CANCELLED
    assert call.cancelled()
    client, server = await arpc_pair(receiver, echo.SERVER_STREAM)
    assert client.attributes["rpc.grpc.status_code"] == CANCELLED
    assert client.status_code == "ERROR"
    assert server.attributes["rpc.grpc.status_code"] == CANCELLED
    labels = echo_labels(echo.SERVER_STREAM, "server_stream")
    assert sample(telemetry, "grpc_client_msg_received_total", **labels) == 2
    assert sample(telemetry, "grpc_server_handled_total", grpc_code="Canceled", **labels) == 1


async def test_bidi_reader_writer_call(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """A bidi call driven with write()/read()/done_writing() works through the interceptor and is one span."""
    call = aio_echo.bidi()
    await call.write(b"x")
    assert await call.read() == b"x"
    await call.write(b"y")
    assert await call.read() == b"y"
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert await call.code() is grpc.StatusCode.OK
    await arpc_pair(receiver, echo.BIDI)


async def test_bidi_cancel_while_server_waits(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """Cancelling a bidi call while the server waits ends both spans CANCELLED."""
    echo.WAITING.clear()
    call = aio_echo.bidi()
    await call.write(b"a")
    assert await call.read() == b"a"
    await call.write(b"wait")
    assert await asyncio.to_thread(echo.WAITING.wait, 10)  # the server is waiting, not yet reading "wait"
    call.cancel()
    client, server = await arpc_pair(receiver, echo.BIDI)
    assert client.attributes["rpc.grpc.status_code"] == CANCELLED
    assert server.attributes["rpc.grpc.status_code"] == CANCELLED


async def test_call_object_methods(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """The aio call stays awaitable with add_done_callback(), code(), details() and metadata."""
    call = aio_echo.unary(b"ok")
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    call.add_done_callback(done.set_result)
    assert await call == b"ok"
    assert await asyncio.wait_for(done, 5) is call
    assert call.done()
    assert not call.cancelled()
    assert await call.code() is grpc.StatusCode.OK
    assert await call.details() in ("", None)
    assert await call.initial_metadata() is not None
    assert await call.trailing_metadata() is not None
    stream = aio_echo.client_stream()
    await stream.write(b"p")
    await stream.write(b"q")
    await stream.done_writing()
    assert await stream == b"p|q"
    await arpc_pair(receiver, echo.UNARY)
    await arpc_pair(receiver, echo.CLIENT_STREAM)


async def test_cancel_unary_call(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """Cancelling an aio unary call that is waiting on the server ends both spans CANCELLED."""
    echo.WAITING.clear()
    call = aio_echo.unary(b"wait")
    assert await asyncio.to_thread(echo.WAITING.wait, 10)  # the RPC reached the server's handler
    assert call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    client, server = await arpc_pair(receiver, echo.UNARY)
    assert client.attributes["rpc.grpc.status_code"] == CANCELLED
    assert server.attributes["rpc.grpc.status_code"] == CANCELLED


async def test_cancel_before_dispatch(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """A call cancelled before it dispatched leaves no span waiting on it.

    An interceptor never ran for it (no span); an instrumented channel started the hop with the call, which
    ends CANCELLED.
    """
    call = aio_echo.unary(b"ok")
    assert call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await aio_echo.unary(b"after") == b"after"
    if aio_echo.way == "channel":
        cancelled, client = sorted(
            (span for span in await asyncio.to_thread(receiver.wait_for_spans, 3) if span.kind == "CLIENT"),
            key=lambda span: span.start_ns,
        )
        assert cancelled.attributes["rpc.grpc.status_code"] == CANCELLED
    else:
        (client,), _ = await arpc_spans(receiver, echo.UNARY)
    assert client.attributes["rpc.grpc.status_code"] == 0


async def test_channel_closed_mid_stream(aio_echo: AioEcho, receiver: OTLPReceiver) -> None:
    """Closing the channel under a half-read stream cancels the RPC; both spans end CANCELLED.

    (grpc.aio keeps an in-flight call alive until its RPC ends, so dropping the call object alone does not end
    it; closing the channel or cancelling the call does.)
    """
    call = aio_echo.server_stream(b"2 wait")
    responses = call.__aiter__()
    assert await responses.__anext__() == b"0"
    await aio_echo.channel.close()
    assert await call.code() is grpc.StatusCode.CANCELLED
    client, server = await arpc_pair(receiver, echo.SERVER_STREAM)
    assert client.attributes["rpc.grpc.status_code"] == CANCELLED
    assert server.attributes["rpc.grpc.status_code"] == CANCELLED


async def test_unimplemented_method(aio_echo: AioEcho, receiver: OTLPReceiver, telemetry: hoptel.Telemetry) -> None:
    """A method the aio server lacks is UNIMPLEMENTED, counted under the one unknown series."""
    with pytest.raises(grpc.RpcError) as raised:
        await aio_echo.channel.unary_unary("/no.Such/Thing", None, None)(b"x")
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    await arpc_pair(receiver, "/no.Such/Thing")
    unknown = {"grpc_type": "unary", "grpc_service": "unknown", "grpc_method": "unknown"}
    assert sample(telemetry, "grpc_server_handled_total", grpc_code="Unimplemented", **unknown) == 1


def test_aio_client_interceptor_shapes(telemetry: hoptel.Telemetry) -> None:
    """The aio client interceptor is a sequence of one single-kind interceptor per kind, itself none of the kinds."""
    interceptor = hoptel.aio_client_interceptor(telemetry)
    kinds = (
        grpc.aio.UnaryUnaryClientInterceptor,
        grpc.aio.UnaryStreamClientInterceptor,
        grpc.aio.StreamUnaryClientInterceptor,
        grpc.aio.StreamStreamClientInterceptor,
    )
    assert not any(isinstance(interceptor, kind) for kind in kinds)
    views = list(interceptor)
    assert len(views) == len(kinds)
    assert [interceptor[index] for index in range(len(kinds))] == views
    for view, kind in zip(views, kinds, strict=True):
        assert [isinstance(view, other) for other in kinds] == [other is kind for other in kinds]
