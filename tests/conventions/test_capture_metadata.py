"""HOPTEL_CAPTURE_GRPC_METADATA_{SERVER,CLIENT}_REQUEST: request metadata as ``rpc.grpc.request.metadata.<key>``.

Real sync and aio servers with hoptel's interceptors; clients both ways (interceptor and instrumented channel).
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from support import grpc_echo as echo
from support.fixture_types import TelemetryFactory
from support.grpc_servers import aio_grpc_server, sync_grpc_server

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

WAYS = ("interceptor", "channel")
PREFIX = "rpc.grpc.request.metadata."
METADATA = (
    ("x-tenant", "acme"),
    ("x-request-id", "r-1"),
    ("x-request-id", "r-2"),
    ("x-session-token", "s3cret"),
    ("authorization", "Bearer s3cret"),
    ("x-trace-bin", b"\x00\x01"),
)
SETTINGS = {
    "capture_grpc_metadata_server_request": "X-Tenant,x-request-.*,x-session-token,authorization,x-trace-bin",
    "capture_grpc_metadata_client_request": ".*",
    "instrumentation_http_capture_headers_sanitize_fields": "session",
}
SERVER_EXPECTED = {"x-tenant": ["acme"], "x-request-id": ["r-1", "r-2"], "x-session-token": ["[REDACTED]"]}


def _metadata(span: ReceivedSpan) -> dict[str, Any]:
    return {key.removeprefix(PREFIX): value for key, value in span.attributes.items() if key.startswith(PREFIX)}


def _pair(tel: hoptel.Telemetry, receiver: OTLPReceiver) -> tuple[ReceivedSpan, ReceivedSpan]:
    assert tel.force_flush()
    spans = {span.kind: span for span in receiver.spans()}
    assert len(receiver.spans()) == 2, receiver.spans()
    return spans["CLIENT"], spans["SERVER"]


@pytest.mark.parametrize("way", WAYS)
def test_sync_metadata_capture(make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str) -> None:
    """Named and matched keys are recorded as string arrays; sanitized; never authorization or -bin values."""
    tel = make_telemetry(**SETTINGS)
    server = sync_grpc_server(echo.sync_handler(), interceptors=[hoptel.server_interceptor(tel)])
    with server as target:
        if way == "channel":
            channel = hoptel.instrument_channel(grpc.insecure_channel(target), tel, target=target)
        else:
            interceptor = hoptel.client_interceptor(tel, target=target)
            channel = grpc.intercept_channel(grpc.insecure_channel(target), interceptor)
        with channel:
            assert channel.unary_unary(echo.UNARY)(b"ok", metadata=METADATA, timeout=10) == b"ok"
    client, server_span = _pair(tel, receiver)
    assert _metadata(server_span) == SERVER_EXPECTED
    # The client records the caller's metadata only: not hoptel's traceparent.
    assert _metadata(client) == SERVER_EXPECTED


@pytest.mark.parametrize("way", WAYS)
async def test_aio_metadata_capture(make_telemetry: TelemetryFactory, receiver: OTLPReceiver, way: str) -> None:
    """The aio interceptors and channel capture the same way."""
    tel = make_telemetry(**SETTINGS)
    async with aio_grpc_server(echo.aio_handler(), interceptors=[hoptel.aio_server_interceptor(tel)]) as target:
        if way == "channel":
            channel = hoptel.instrument_aio_channel(grpc.aio.insecure_channel(target), tel, target=target)
        else:
            interceptors = hoptel.aio_client_interceptors(tel, target=target)
            channel = grpc.aio.insecure_channel(target, interceptors=interceptors)
        try:
            stream = channel.stream_stream(echo.BIDI, None, None)(iter([b"a"]), metadata=METADATA, timeout=10)
            assert [reply async for reply in stream] == [b"a"]
        finally:
            await channel.close()
    client, server_span = _pair(tel, receiver)
    assert _metadata(server_span) == SERVER_EXPECTED
    assert _metadata(client) == SERVER_EXPECTED


def test_no_metadata_is_recorded_by_default(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """Without the variables no metadata value goes on a span."""
    tel = make_telemetry()
    server = sync_grpc_server(echo.sync_handler(), interceptors=[hoptel.server_interceptor(tel)])
    with server as target, hoptel.instrument_channel(grpc.insecure_channel(target), tel) as channel:
        assert channel.unary_unary(echo.UNARY)(b"ok", metadata=METADATA, timeout=10) == b"ok"
    for span in _pair(tel, receiver):
        assert _metadata(span) == {}


def test_hooks_and_metadata_capture_work_together(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """With a request hook (the enrichment's start) the metadata is captured too, and the hook still runs."""
    tel = make_telemetry(capture_grpc_metadata_server_request="x-tenant")
    seen: list[str] = []
    interceptor = hoptel.server_interceptor(tel, request_hook=lambda span, call: seen.append(call.method))
    server = sync_grpc_server(echo.sync_handler(), interceptors=[interceptor])
    with server as target, hoptel.instrument_channel(grpc.insecure_channel(target), tel) as channel:
        assert channel.unary_unary(echo.UNARY)(b"ok", metadata=METADATA, timeout=10) == b"ok"
    _, server_span = _pair(tel, receiver)
    assert _metadata(server_span) == {"x-tenant": ["acme"]}
    assert seen == [echo.UNARY]
