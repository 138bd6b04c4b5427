"""Interop with the official OpenTelemetry instrumentations: each direction joins into one trace."""

from __future__ import annotations

import httpx
from httptest_support import TIMEOUT, Serve, build_app, by_service
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from support.fixture_types import TelemetryFactory

import hoptel
from hoptel.receiver import OTLPReceiver


def test_official_httpx_client_to_hoptel_server(
    serve: Serve, make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """An opentelemetry-instrumentation-httpx client calling a hoptel ASGI server gives one trace."""
    official_tel, server_tel = make_telemetry("official"), make_telemetry("server")
    app = build_app()
    app.add_middleware(hoptel.ASGIMiddleware, telemetry=server_tel)
    base = serve(app)
    client = httpx.Client(timeout=TIMEOUT)
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=official_tel.tracer_provider)
    try:
        with client:
            assert client.get(f"{base}/items/5").status_code == 200
    finally:
        HTTPXClientInstrumentor.uninstrument_client(client)
    spans = receiver.wait_for_spans(2)
    (client_span,) = by_service(spans, "official")
    (server_span,) = by_service(spans, "server")
    assert (client_span.kind, client_span.scope_name) == ("CLIENT", "opentelemetry.instrumentation.httpx")
    assert server_span.kind == "SERVER"
    assert (server_span.trace_id, server_span.parent_span_id) == (client_span.trace_id, client_span.span_id)


async def test_hoptel_client_to_official_asgi_server(
    serve: Serve, make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """A hoptel client calling an app under opentelemetry-instrumentation-asgi gives one trace."""
    client_tel, official_tel = make_telemetry("client"), make_telemetry("official")
    base = serve(OpenTelemetryMiddleware(build_app(), tracer_provider=official_tel.tracer_provider))
    async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=client_tel), timeout=TIMEOUT) as client:
        assert (await client.get(f"{base}/items/5")).status_code == 200
    receiver.wait_for_spans(1, predicate=lambda span: span.kind == "SERVER")
    receiver.wait_for_spans(1, predicate=lambda span: span.kind == "CLIENT")
    official_tel.force_flush()  # the middleware's internal spans end before its server span
    spans = receiver.spans()
    assert len({span.trace_id for span in spans}) == 1
    (client_span,) = by_service(spans, "client")
    (server_span,) = [span for span in by_service(spans, "official") if span.kind == "SERVER"]
    assert server_span.parent_span_id == client_span.span_id
    assert client_span.parent_span_id is None
    # the official middleware's own internal send/receive spans hang under its server span
    assert {span.parent_span_id for span in by_service(spans, "official") if span.kind != "SERVER"} <= {
        server_span.span_id
    }
