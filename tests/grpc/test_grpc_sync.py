"""Sync client and server interceptors: spans, parents, status paths, cancellation, deadlines, Call objects."""

from __future__ import annotations

import gc
import threading

import grpc
import pytest
from grpc_support import SyncEcho, echo_labels, rpc_pair, rpc_spans, sample
from support import grpc_echo as echo

import hoptel
from hoptel.receiver import OTLPReceiver


def test_unary_client_and_server_spans(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """A unary RPC gives a CLIENT span and a SERVER span child of it, with the default RPC attributes."""
    assert sync_echo.unary(b"hello") == b"hello"
    client, server = rpc_pair(receiver, echo.UNARY)
    assert client.kind == "CLIENT"
    assert server.kind == "SERVER"
    assert client.parent_span_id is None
    for span in (client, server):
        assert span.name == "hoptel.test.Echo/Unary"
        assert span.status_code == "UNSET"
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.service"] == "hoptel.test.Echo"
        assert span.attributes["rpc.method"] == "Unary"
        assert span.attributes["rpc.grpc.status_code"] == 0
    host, port = sync_echo.target.rsplit(":", 1)
    assert client.attributes["server.address"] == host
    assert client.attributes["server.port"] == int(port)
    assert server.attributes["network.peer.address"] == "127.0.0.1"
    assert isinstance(server.attributes["network.peer.port"], int)


@pytest.mark.parametrize(
    ("command", "code", "server_error"),
    [
        (b"abort", grpc.StatusCode.NOT_FOUND, False),
        (b"set_code", grpc.StatusCode.INVALID_ARGUMENT, False),
        (b"raise", grpc.StatusCode.UNKNOWN, True),
    ],
)
def test_unary_status_paths(
    sync_echo: SyncEcho, receiver: OTLPReceiver, command: bytes, code: grpc.StatusCode, server_error: bool
) -> None:
    """abort(), set_code() and a raise set both spans' code; the server errs on UNKNOWN only."""
    with pytest.raises(grpc.RpcError) as raised:
        sync_echo.unary(command)
    assert raised.value.code() is code
    client, server = rpc_pair(receiver, echo.UNARY)
    assert client.attributes["rpc.grpc.status_code"] == code.value[0]
    assert server.attributes["rpc.grpc.status_code"] == code.value[0]
    assert client.status_code == "ERROR"
    assert server.status_code == ("ERROR" if server_error else "UNSET")
    exceptions = [event for event in server.events if event.name == "exception"]
    if command == b"raise":
        assert len(exceptions) == 1
        assert exceptions[0].attributes["exception.type"].endswith("HandlerError")
    else:
        assert exceptions == []
    assert client.events == ()


def _run(client: SyncEcho, shape: str, requests: bytes | list[bytes]) -> object:
    if shape == "server_stream":
        return list(client.server_stream(requests))
    if shape == "client_stream":
        return client.client_stream(iter(requests))
    return list(client.bidi(iter(requests)))


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
def test_streaming_status_paths(
    sync_echo: SyncEcho, receiver: OTLPReceiver, shape: str, requests: bytes | list[bytes], code: grpc.StatusCode
) -> None:
    """Streaming RPCs end with the status the handler produced, on both spans, one exception event if it raised."""
    with pytest.raises(grpc.RpcError) as raised:
        _run(sync_echo, shape, requests)
    assert raised.value.code() is code
    method = {"server_stream": echo.SERVER_STREAM, "client_stream": echo.CLIENT_STREAM, "bidi": echo.BIDI}[shape]
    client, server = rpc_pair(receiver, method)
    assert client.attributes["rpc.grpc.status_code"] == code.value[0]
    assert server.attributes["rpc.grpc.status_code"] == code.value[0]
    assert len([event for event in server.events if event.name == "exception"]) == (code is grpc.StatusCode.UNKNOWN)


def test_streams_count_messages(sync_echo: SyncEcho, receiver: OTLPReceiver, telemetry: hoptel.Telemetry) -> None:
    """Each streaming shape is one span per side, and the msg counters hold the messages actually moved."""
    assert list(sync_echo.server_stream(b"3")) == [b"0", b"1", b"2"]
    assert sync_echo.client_stream(iter([b"a", b"b", b"c", b"d"])) == b"a|b|c|d"
    assert list(sync_echo.bidi(iter([b"x", b"y"]))) == [b"x", b"y"]
    for method in (echo.SERVER_STREAM, echo.CLIENT_STREAM, echo.BIDI):
        rpc_pair(receiver, method)
    expected = {  # (rpc type, method): (client sent, client received) == (server received, server sent)
        ("server_stream", echo.SERVER_STREAM): (1, 3),
        ("client_stream", echo.CLIENT_STREAM): (4, 1),
        ("bidi_stream", echo.BIDI): (2, 2),
    }
    for (rpc_type, method), (requests, responses) in expected.items():
        labels = echo_labels(method, rpc_type)
        assert sample(telemetry, "grpc_client_msg_sent_total", **labels) == requests
        assert sample(telemetry, "grpc_client_msg_received_total", **labels) == responses
        assert sample(telemetry, "grpc_server_msg_received_total", **labels) == requests
        assert sample(telemetry, "grpc_server_msg_sent_total", **labels) == responses
        assert sample(telemetry, "grpc_server_handled_total", grpc_code="OK", **labels) == 1


def test_server_span_current_in_handler(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """The SERVER span is current while a unary handler runs and while a stream handler yields each response."""
    unary_seen = sync_echo.unary(b"span").decode()
    _, server = rpc_pair(receiver, echo.UNARY)
    assert unary_seen == server.span_id
    *_, stream_seen = list(sync_echo.server_stream(b"2 span"))
    _, stream_server = rpc_pair(receiver, echo.SERVER_STREAM)
    assert stream_seen.decode() == stream_server.span_id


def test_client_keeps_caller_metadata(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """The caller's metadata reaches the server unchanged, next to the injected traceparent."""
    seen = sync_echo.unary(b"metadata", metadata=[("x-tenant", "blue"), ("x-request-id", "42")]).decode().splitlines()
    assert "x-tenant=blue" in seen
    assert "x-request-id=42" in seen
    client, _ = rpc_pair(receiver, echo.UNARY)
    (traceparent,) = [line for line in seen if line.startswith("traceparent=")]
    assert traceparent.split("-")[1:3] == [client.trace_id, client.span_id]


def test_deadline_exceeded(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """An expiring deadline ends both spans DEADLINE_EXCEEDED, an error on each side."""
    with pytest.raises(grpc.RpcError) as raised:
        sync_echo.unary(b"wait", timeout=0.3)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    client, server = rpc_pair(receiver, echo.UNARY)
    for span in (client, server):
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
        assert span.status_code == "ERROR"


def test_streaming_deadline_exceeded(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """A deadline that expires while the server streams ends both spans DEADLINE_EXCEEDED."""
    responses = sync_echo.server_stream(b"1 wait", timeout=0.3)
    assert next(responses) == b"0"
    with pytest.raises(grpc.RpcError) as raised:
        next(responses)
    assert raised.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    client, server = rpc_pair(receiver, echo.SERVER_STREAM)
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert server.status_code == "ERROR"


def test_cancel_mid_stream(sync_echo: SyncEcho, receiver: OTLPReceiver, telemetry: hoptel.Telemetry) -> None:
    """Cancelling a response stream mid-way cancels the RPC and ends both spans CANCELLED."""
    responses = sync_echo.server_stream(b"3 wait")
    assert [next(responses), next(responses)] == [b"0", b"1"]
    assert responses.cancel()
    assert responses.code() is grpc.StatusCode.CANCELLED
    client, server = rpc_pair(receiver, echo.SERVER_STREAM)
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert client.status_code == "ERROR"
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert server.status_code == "UNSET"
    labels = echo_labels(echo.SERVER_STREAM, "server_stream")
    assert sample(telemetry, "grpc_client_msg_received_total", **labels) == 2
    assert sample(telemetry, "grpc_client_handled_total", grpc_code="Canceled", **labels) == 1


def test_abandoned_response_iterator(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """A response iterator dropped half-read is cancelled by grpcio on collection, and both spans end CANCELLED."""
    responses = sync_echo.server_stream(b"2 wait")
    assert next(responses) == b"0"
    del responses
    gc.collect()
    client, server = rpc_pair(receiver, echo.SERVER_STREAM)
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


def test_bidi_cancel_from_client(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """Cancelling a bidi call while the server waits for the client ends both spans CANCELLED."""
    echo.WAITING.clear()
    responses = sync_echo.bidi(iter([b"a", b"wait"]))
    assert next(responses) == b"a"
    # Cancelled before the server read "wait", its request iterator may simply end and the handler return OK.
    assert echo.WAITING.wait(10)
    responses.cancel()
    client, server = rpc_pair(receiver, echo.BIDI)
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


def test_with_call_and_future(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """with_call() returns (response, Call) and future() a working Future, each recorded once."""
    response, call = sync_echo.unary.with_call(b"one")
    assert response == b"one"
    assert call.code() is grpc.StatusCode.OK
    assert call.trailing_metadata() is not None
    future = sync_echo.unary.future(b"two")
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    assert future.result(timeout=5) == b"two"
    assert done.wait(5)
    assert future.code() is grpc.StatusCode.OK
    stream_response, stream_call = sync_echo.client_stream.with_call(iter([b"a", b"b"]))
    assert stream_response == b"a|b"
    assert stream_call.code() is grpc.StatusCode.OK
    assert sync_echo.client_stream.future(iter([b"c"])).result(timeout=5) == b"c"
    clients, _ = rpc_spans(receiver, echo.UNARY, 2)
    assert all(span.attributes["rpc.grpc.status_code"] == 0 for span in clients)
    rpc_spans(receiver, echo.CLIENT_STREAM, 2)


def test_future_cancel(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """Cancelling a future() cancels the RPC; the client span ends CANCELLED without waiting for the server."""
    future = sync_echo.unary.future(b"wait")
    assert future.cancel()
    assert future.cancelled()
    (client,) = receiver.wait_for_spans(1, predicate=lambda span: span.kind == "CLIENT")
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


def test_response_iterator_call_methods(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """The response iterator keeps grpc.Call and grpc.Future: metadata, code, details, done, time_remaining."""
    responses = sync_echo.server_stream(b"2", timeout=30)
    assert isinstance(responses, grpc.Call)
    assert isinstance(responses, grpc.Future)
    assert responses.initial_metadata() is not None
    remaining = responses.time_remaining()
    assert remaining is not None
    assert 0 < remaining <= 30
    assert list(responses) == [b"0", b"1"]
    assert responses.code() is grpc.StatusCode.OK
    assert responses.details() in (None, "")
    assert responses.trailing_metadata() is not None
    assert responses.done()
    assert not responses.is_active()
    assert not responses.cancel()
    rpc_pair(receiver, echo.SERVER_STREAM)


def test_unimplemented_method(sync_echo: SyncEcho, receiver: OTLPReceiver, telemetry: hoptel.Telemetry) -> None:
    """A method the server lacks is UNIMPLEMENTED, traced on both sides and counted under the unknown series."""
    with pytest.raises(grpc.RpcError) as raised:
        sync_echo.channel.unary_unary("/no.Such/Thing")(b"x")
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    client, server = rpc_pair(receiver, "/no.Such/Thing")
    assert server.attributes["rpc.service"] == "unknown"
    assert server.status_code == "ERROR"
    unknown = {"grpc_type": "unary", "grpc_service": "unknown", "grpc_method": "unknown"}
    assert sample(telemetry, "grpc_server_handled_total", grpc_code="Unimplemented", **unknown) == 1
    assert client.attributes["rpc.service"] == "no.Such"


def _unserializable(message: bytes) -> bytes:
    raise ValueError("cannot serialize")


def test_request_that_cannot_be_serialized(sync_echo: SyncEcho, receiver: OTLPReceiver) -> None:
    """The call fails INTERNAL in grpcio before it is sent; the caller gets that error, the CLIENT span says so."""
    unary = sync_echo.channel.unary_unary(echo.UNARY, request_serializer=_unserializable)
    with pytest.raises(grpc.RpcError) as raised:
        unary(b"x")
    assert raised.value.code() is grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]  # grpcio's errors are calls
    (client,) = receiver.wait_for_spans(1, predicate=lambda span: span.kind == "CLIENT")
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert client.status_code == "ERROR"
    assert [span for span in receiver.spans() if span.kind == "SERVER"] == []  # nothing was sent
