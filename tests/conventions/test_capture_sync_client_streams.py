"""HOPTEL_CAPTURE_GRPC_METADATA_CLIENT_RESPONSE on sync response streams: the capture's building blocks.

``ClientResponseCapture.stream_multicallable`` / ``stream_continuation`` hand the hop's ``ClientResponses`` a
stand-in for grpcio's response iterator that records the server's initial and trailing metadata when the stream
ends, before the hop does, on whichever thread sees the end first (the caller's, or grpcio's termination
callback). These tests drive them as the capturing client and channel do (start, send, ``ClientResponses``) with
real sync servers on loopback and read the spans at the OTLP receiver. The public capturing client and channel
use them once they wrap their response-streaming shapes (see the last test).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from support.fixture_types import TelemetryFactory
from support.grpc_servers import sync_grpc_server

import hoptel
from hoptel.interceptors.grpc.client_response import CapturedResponses, client_response_capture
from hoptel.interceptors.grpc.names import BIDI_STREAM, SERVER_STREAM
from hoptel.interceptors.grpc.streams import ClientResponses
from hoptel.interceptors.recorder import HopRecorder
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

SERVICE = "conventions.test.SyncStreams"
STREAM = f"/{SERVICE}/Stream"
ECHO = f"/{SERVICE}/Echo"
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
        "x-initial,x-tenant,x-request-.*,x-session-token,authorization,cookie,x-trace-bin"
    ),
    "instrumentation_http_capture_headers_sanitize_fields": "session",
}
EXPECTED = {
    "x-initial": ["early"],
    "x-tenant": ["acme"],
    "x-request-id": ["r-1", "r-2"],
    "x-session-token": ["[REDACTED]"],
}


def _stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    context.send_initial_metadata(INITIAL)
    yield request
    context.set_trailing_metadata(TRAILERS)
    if request == b"abort":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    yield request


def _echo(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    context.send_initial_metadata(INITIAL)
    yield from requests
    context.set_trailing_metadata(TRAILERS)


def _handler() -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Stream": grpc.unary_stream_rpc_method_handler(_stream),
            "Echo": grpc.stream_stream_rpc_method_handler(_echo),
        },
    )


def _metadata(span: ReceivedSpan) -> dict[str, Any]:
    return {key.removeprefix(PREFIX): value for key, value in span.attributes.items() if key.startswith(PREFIX)}


def _spans(tel: hoptel.Telemetry, receiver: OTLPReceiver, count: int) -> list[ReceivedSpan]:
    assert tel.force_flush()
    spans = [span for span in receiver.spans() if span.kind == "CLIENT"]
    assert len(spans) == count
    return spans


class _Client:
    """Records response streams as the capturing channel and interceptor do: start, send, ``ClientResponses``."""

    def __init__(self, tel: hoptel.Telemetry, channel: grpc.Channel, way: str) -> None:
        recorder = HopRecorder.of(tel)
        capture = client_response_capture(recorder)
        assert capture is not None
        self._capture = capture
        self._recorder = recorder
        self._start = capture.start(recorder.start_grpc_client)
        self._channel = channel
        self._way = way

    def call(self, method: str, rpc_type: str, request: Any) -> ClientResponses:
        route = self._recorder.grpc_route("client", rpc_type, method)
        started = self._start(route, None, None)
        assert started is not None
        hop, metadata = started
        inner = self._channel.unary_stream(method) if rpc_type == SERVER_STREAM else self._channel.stream_stream(method)
        if self._way == "channel":
            call = self._capture.stream_multicallable(inner)(request, timeout=10, metadata=metadata)
        else:

            def continuation(details: Any, request: Any) -> Any:
                return inner(request, timeout=details[1], metadata=details[2])

            call = self._capture.stream_continuation(continuation)((method, 10, metadata), request)
        assert isinstance(call, CapturedResponses)
        return ClientResponses(call, hop)


WAYS = ("interceptor", "channel")


@pytest.mark.parametrize("way", WAYS)
def test_response_streams_record_metadata_before_the_hop_ends(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """Unary-stream and stream-stream, read to the end many times: every span has initial then trailing metadata."""
    tel = make_telemetry(**SETTINGS)
    rounds = 20
    with sync_grpc_server(_handler()) as target, grpc.insecure_channel(target) as channel:
        client = _Client(tel, channel, way)
        for _ in range(rounds):
            assert list(client.call(STREAM, SERVER_STREAM, b"s")) == [b"s", b"s"]
            assert list(client.call(ECHO, BIDI_STREAM, iter([b"x", b"y"]))) == [b"x", b"y"]
    for span in _spans(tel, receiver, 2 * rounds):
        assert _metadata(span) == EXPECTED, span.name
        assert span.attributes["rpc.grpc.status_code"] == 0


@pytest.mark.parametrize("way", WAYS)
def test_a_failed_response_stream_records_its_trailing_metadata(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """A stream the server aborts after one response records the initial metadata and the trailers."""
    tel = make_telemetry(**SETTINGS)
    with sync_grpc_server(_handler()) as target, grpc.insecure_channel(target) as channel:
        responses = _Client(tel, channel, way).call(STREAM, SERVER_STREAM, b"abort")
        assert next(responses) == b"abort"
        with pytest.raises(grpc.RpcError) as raised:
            next(responses)
        assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    (span,) = _spans(tel, receiver, 1)
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert _metadata(span) == EXPECTED


def test_a_cancelled_response_stream_records_the_initial_metadata(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """``cancel()`` after the first response: CANCELLED, with the initial metadata already received."""
    tel = make_telemetry(**SETTINGS)
    with sync_grpc_server(_handler()) as target, grpc.insecure_channel(target) as channel:
        responses = _Client(tel, channel, "channel").call(ECHO, BIDI_STREAM, iter([b"x", b"y"]))
        assert next(responses) == b"x"
        assert responses.cancel()
    (span,) = _spans(tel, receiver, 1)
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert _metadata(span) == {"x-initial": ["early"]}


def test_the_stand_in_is_still_grpcio_s_call(make_telemetry: TelemetryFactory) -> None:
    """``ClientResponses`` around the stand-in still answers as a ``grpc.Call``: code, metadata, details."""
    tel = make_telemetry(**SETTINGS)
    with sync_grpc_server(_handler()) as target, grpc.insecure_channel(target) as channel:
        responses = _Client(tel, channel, "channel").call(STREAM, SERVER_STREAM, b"s")
        assert list(responses) == [b"s", b"s"]
        assert responses.code() is grpc.StatusCode.OK
        assert ("x-initial", "early") in responses.initial_metadata()
        assert ("x-tenant", "acme") in responses.trailing_metadata()
        assert responses.done()


def test_nothing_is_wrapped_for_an_unrecorded_hop(make_telemetry: TelemetryFactory) -> None:
    """No span handed over (a filtered method, a suppressed start): grpcio's call is returned as it is."""
    tel = make_telemetry(**SETTINGS)
    capture = client_response_capture(HopRecorder.of(tel))
    assert capture is not None
    sentinel = object()
    assert capture.responses(None, sentinel) is sentinel
    assert client_response_capture(HopRecorder.of(make_telemetry())) is None


@pytest.mark.parametrize("way", WAYS)
def test_public_sync_clients_record_response_stream_metadata(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str
) -> None:
    """Through ``hoptel.client_interceptor()`` and ``hoptel.instrument_channel()``: what the blocks above record."""
    tel = make_telemetry(**SETTINGS)
    with sync_grpc_server(_handler()) as target, grpc.insecure_channel(target) as plain:
        if way == "channel":
            channel = hoptel.instrument_channel(plain, tel, target=target)
        else:
            channel = grpc.intercept_channel(plain, hoptel.client_interceptor(tel, target=target))
        assert list(channel.unary_stream(STREAM)(b"s", timeout=10)) == [b"s", b"s"]
        assert list(channel.stream_stream(ECHO)(iter([b"x", b"y"]), timeout=10)) == [b"x", b"y"]
    for span in _spans(tel, receiver, 2):
        assert _metadata(span) == EXPECTED, span.name
