"""Request and response hooks on the httpx transports and the ASGI middleware, over uvicorn on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hooks_support import Calls, hook_errors, raising_hook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from support.log_records import LogRecords
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.interceptors.hooks import HttpCall
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

TIMEOUT = httpx.Timeout(10.0)
TENANT = {"x-tenant": "acme"}


def _app(tel: hoptel.Telemetry, **options: Any) -> Starlette:
    async def item(request: Request) -> Response:
        return JSONResponse({"item": request.path_params["item_id"]}, headers={"x-served-by": "hooks"})

    async def missing(request: Request) -> Response:
        return PlainTextResponse("gone", status_code=404)

    app = Starlette(routes=[Route("/items/{item_id}", item), Route("/missing", missing)])
    app.add_middleware(hoptel.ASGIMiddleware, telemetry=tel, **options)
    return app


def _pair(receiver: OTLPReceiver) -> tuple[ReceivedSpan, ReceivedSpan]:
    spans = receiver.wait_for_spans(2)
    (client,) = [span for span in spans if span.kind == "CLIENT"]
    (server,) = [span for span in spans if span.kind == "SERVER"]
    return client, server


def test_sync_transport_and_middleware_hooks_reach_the_receiver(
    telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """httpx.Client + ASGI app: both hooks on both sides tag their spans; the server hook sees the route."""
    server_calls, client_calls = Calls(), Calls()
    app = _app(telemetry, request_hook=server_calls.request, response_hook=server_calls.response)
    transport = hoptel.HTTPTransport(
        telemetry=telemetry, request_hook=client_calls.request, response_hook=client_calls.response
    )
    with run_uvicorn(app) as base, httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        response = client.get(f"{base}/items/7?q=secret", headers=TENANT)
        assert (response.status_code, response.json()) == (200, {"item": "7"})
    client_span, server_span = _pair(receiver)
    assert client_span.attributes["hook.request.client"] == f"{base}/items/7?q=secret"
    assert client_span.attributes["url.full"] == f"{base}/items/7?q=REDACTED"
    assert (client_span.attributes["hook.tenant"], client_span.attributes["hook.response.client"]) == ("acme", 200)
    assert server_span.attributes["hook.request.server"] == f"{base}/items/7?q=secret"
    assert (server_span.attributes["hook.tenant"], server_span.attributes["hook.response.server"]) == ("acme", 200)
    (server_response,) = server_calls.responses
    assert isinstance(server_response, HttpCall)
    assert (server_response.route, server_response.status_code) == ("/items/{item_id}", 200)
    assert server_response.error is None
    assert ("x-served-by", "hooks") in server_response.response_headers
    (client_response,) = client_calls.responses
    assert isinstance(client_response, HttpCall)
    assert ("x-served-by", "hooks") in client_response.response_headers
    assert client_response.get("traceparent") is None  # the caller's headers, not hoptel's propagation


async def test_async_transport_hooks_reach_the_receiver(telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """httpx.AsyncClient: both hooks tag the CLIENT span; the response hook sees a 404 status."""
    calls = Calls()
    transport = hoptel.AsyncHTTPTransport(telemetry=telemetry, request_hook=calls.request, response_hook=calls.response)
    with run_uvicorn(_app(telemetry)) as base:
        async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
            assert (await client.get(f"{base}/missing", headers=TENANT)).status_code == 404
    client_span, _ = await asyncio.to_thread(_pair, receiver)
    assert client_span.attributes["hook.response.client"] == 404
    assert client_span.attributes["hook.tenant"] == "acme"


def test_instrument_httpx_passes_the_hooks(telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """instrument_httpx(client, request_hook=...) hooks the client's transports."""
    calls = Calls()
    with run_uvicorn(_app(telemetry)) as base, httpx.Client(timeout=TIMEOUT) as client:
        hoptel.instrument_httpx(client, telemetry, request_hook=calls.request, response_hook=calls.response)
        assert client.get(f"{base}/items/1").status_code == 200
    client_span, _ = _pair(receiver)
    assert client_span.attributes["hook.response.client"] == 200


def test_streamed_response_hook_runs_when_the_response_is_closed(telemetry: hoptel.Telemetry) -> None:
    """The client response hook runs when the streamed body is closed, not when the headers arrive."""
    calls = Calls()
    transport = hoptel.HTTPTransport(telemetry=telemetry, response_hook=calls.response)
    with run_uvicorn(_app(telemetry)) as base, httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        with client.stream("GET", f"{base}/items/3") as response:
            assert response.status_code == 200
            assert calls.responses == []
            response.read()
        assert [call.status_code for call in calls.responses] == [200]


def test_failed_request_response_hook_gets_the_error(telemetry: hoptel.Telemetry, refused_url: str) -> None:
    """A refused connection: the response hook gets no status and the exception."""
    calls = Calls()
    transport = hoptel.HTTPTransport(telemetry=telemetry, response_hook=calls.response)
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client, pytest.raises(httpx.ConnectError):
        client.get(refused_url)
    (call,) = calls.responses
    assert isinstance(call, HttpCall)
    assert call.status_code is None
    assert isinstance(call.error, httpx.ConnectError)


def test_raising_hooks_leave_requests_unchanged(telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """Hooks that raise in the client and the middleware: same status and body, every failure counted."""
    hooks: dict[str, Any] = {"request_hook": raising_hook, "response_hook": raising_hook}
    transport = hoptel.HTTPTransport(telemetry=telemetry, **hooks)
    with (
        LogRecords("hoptel.hooks") as logs,
        run_uvicorn(_app(telemetry, **hooks)) as base,
        httpx.Client(transport=transport, timeout=TIMEOUT) as client,
    ):
        for item in ("1", "2"):
            response = client.get(f"{base}/items/{item}")
            assert (response.status_code, response.json()) == (200, {"item": item})
    receiver.wait_for_spans(4)
    assert hook_errors(telemetry) == 8  # 2 requests x 2 sides x 2 hooks
    assert len(logs.records) == 4  # once per hook (4 hooks), not per failure


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_a_response_the_transport_already_closed_ends_the_hop(
    asynchronous: bool, telemetry: hoptel.Telemetry
) -> None:
    """An inner transport returning an in-memory, already closed response (MockTransport): hop and hooks end."""
    calls = Calls()
    inner = httpx.MockTransport(lambda request: httpx.Response(201, content=b"made"))
    options: dict[str, Any] = {"telemetry": telemetry, "response_hook": calls.response}
    if asynchronous:
        async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(inner, **options)) as async_client:
            assert (await async_client.get("http://svc/")).content == b"made"
    else:
        with httpx.Client(transport=hoptel.HTTPTransport(inner, **options)) as client:
            assert client.get("http://svc/").content == b"made"
    assert [call.status_code for call in calls.responses] == [201]
    count = telemetry.registry.get_sample_value(
        "http_client_request_duration_seconds_count",
        {"http_request_method": "GET", "server_address": "svc", "http_response_status_code": "201", "error_type": ""},
    )
    assert count == 1
