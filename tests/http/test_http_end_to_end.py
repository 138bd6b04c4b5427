"""End to end: hoptel httpx clients calling Starlette apps under hoptel's middleware, one trace per request."""

from __future__ import annotations

from typing import Any

import httpx
from httptest_support import (
    CLIENT_DURATION,
    SERVER_DURATION,
    TIMEOUT,
    Serve,
    build_app,
    by_service,
    histogram_count,
    wait_for_count,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.fixture_types import TelemetryFactory

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

REQUESTS = 3


def server_app(tel: hoptel.Telemetry) -> Starlette:
    """The test app under the middleware of ``tel``."""
    app = build_app()
    app.add_middleware(hoptel.ASGIMiddleware, telemetry=tel)
    return app


def assert_client_server_pairs(spans: list[ReceivedSpan], requests: int) -> None:
    """``requests`` traces, each a CLIENT span and the SERVER span it parents."""
    traces: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    assert len(traces) == requests
    for pair in traces.values():
        client, server = sorted(pair, key=lambda span: span.kind)
        assert (client.kind, client.service_name, client.parent_span_id) == ("CLIENT", "client", None)
        assert (server.kind, server.service_name) == ("SERVER", "server")
        assert server.parent_span_id == client.span_id
        assert server.name == "GET /items/{item_id}"


def test_sync_client_to_server_one_trace_per_request(
    serve: Serve, make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Each request of a sync hoptel client makes one trace: the CLIENT span parents the SERVER span."""
    client_tel, server_tel = make_telemetry("client"), make_telemetry("server")
    base = serve(server_app(server_tel))
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=client_tel), timeout=TIMEOUT) as client:
        for item in range(REQUESTS):
            assert client.get(f"{base}/items/{item}").status_code == 200
    assert_client_server_pairs(receiver.wait_for_spans(2 * REQUESTS), REQUESTS)
    client_labels = {
        "http_request_method": "GET",
        "server_address": "127.0.0.1",
        "http_response_status_code": "200",
        "error_type": "",
    }
    assert histogram_count(client_tel, CLIENT_DURATION, client_labels) == REQUESTS
    server_labels = {"http_request_method": "GET", "http_route": "/items/{item_id}", "http_response_status_code": "200"}
    assert wait_for_count(server_tel, SERVER_DURATION, server_labels, expected=REQUESTS) == REQUESTS


async def test_async_client_to_server_one_trace_per_request(
    serve: Serve, make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Each request of an async hoptel client makes one trace: the CLIENT span parents the SERVER span."""
    client_tel, server_tel = make_telemetry("client"), make_telemetry("server")
    base = serve(server_app(server_tel))
    async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=client_tel), timeout=TIMEOUT) as client:
        for item in range(REQUESTS):
            assert (await client.get(f"{base}/items/{item}")).status_code == 200
    assert_client_server_pairs(receiver.wait_for_spans(2 * REQUESTS), REQUESTS)


def test_handler_calling_second_service_gives_three_spans_in_one_trace(
    serve: Serve, make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Front's handler calls back's with an instrumented AsyncClient: SERVER -> CLIENT -> SERVER, one trace."""
    front_tel, back_tel = make_telemetry("front"), make_telemetry("back")
    back_base = serve(server_app(back_tel))

    async def checkout(request: Request) -> Response:
        transport = hoptel.AsyncHTTPTransport(telemetry=front_tel)
        async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
            stock = await client.get(f"{back_base}/items/{request.path_params['cart']}")
        return JSONResponse({"stock": stock.json()})

    front = Starlette(routes=[Route("/checkout/{cart}", checkout)])
    front.add_middleware(hoptel.ASGIMiddleware, telemetry=front_tel)
    front_base = serve(front)

    with httpx.Client(timeout=TIMEOUT) as client:
        assert client.get(f"{front_base}/checkout/9").json() == {"stock": {"item": "9"}}

    spans = receiver.wait_for_spans(3)
    assert len({span.trace_id for span in spans}) == 1
    (front_server,) = [s for s in by_service(spans, "front") if s.kind == "SERVER"]
    (front_client,) = [s for s in by_service(spans, "front") if s.kind == "CLIENT"]
    (back_server,) = by_service(spans, "back")
    assert front_server.parent_span_id is None
    assert front_server.name == "GET /checkout/{cart}"
    assert front_client.parent_span_id == front_server.span_id
    assert back_server.parent_span_id == front_client.span_id
    assert back_server.name == "GET /items/{item_id}"
    assert front_server.start_ns <= front_client.start_ns <= front_client.end_ns <= front_server.end_ns


def test_b3_propagation_end_to_end(serve: Serve, make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """With OTEL_PROPAGATORS=b3 on both sides the request carries a b3 header and the trace still joins."""
    client_tel = make_telemetry("client", propagators="b3")
    server_tel = make_telemetry("server", propagators="b3")
    seen: dict[str, Any] = {}

    async def echo(request: Request) -> Response:
        seen.update(request.headers)
        return JSONResponse({})

    app = Starlette(routes=[Route("/echo", echo)])
    app.add_middleware(hoptel.ASGIMiddleware, telemetry=server_tel)
    base = serve(app)
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=client_tel), timeout=TIMEOUT) as client:
        client.get(f"{base}/echo")
    spans = receiver.wait_for_spans(2)
    (client_span,) = by_service(spans, "client")
    (server_span,) = by_service(spans, "server")
    assert "traceparent" not in seen
    assert seen["b3"].startswith(f"{client_span.trace_id}-{client_span.span_id}-1")
    assert (server_span.trace_id, server_span.parent_span_id) == (client_span.trace_id, client_span.span_id)
