"""Zero-code for ASGI apps: Starlette and FastAPI apps served by real uvicorn get hoptel's SERVER span, once.

Spans go to a real OTLP receiver over OTLP/gRPC. Only SERVER spans are compared: under ``instrument()`` the httpx
client of the test is traced too (CLIENT spans), and OpenTelemetry's ASGI middleware adds INTERNAL ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from support.log_records import LogRecords
from support.uvicorn_server import run_uvicorn
from zerocode_support import http_app, run_instrumented

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

ASGI_SCOPE = "opentelemetry.instrumentation.asgi"
APP = Path(__file__).with_name("zerocode_asgi_app.py")


def _get(app: Any, *paths: str) -> None:
    """Serve ``app`` with uvicorn and GET each path (each must answer 200 or 404, as the app says)."""
    with run_uvicorn(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for path in paths:
            assert client.get(path).status_code in (200, 404)


def _server_spans(receiver: OTLPReceiver, tel: hoptel.Telemetry, count: int) -> list[ReceivedSpan]:
    """The SERVER spans, once ``count`` arrived and everything was flushed (so no more is on its way)."""
    receiver.wait_for_spans(count, predicate=lambda span: span.kind == "SERVER")
    assert tel.force_flush()
    return [span for span in receiver.spans() if span.kind == "SERVER"]


def _fastapi_app(**kwargs: Any) -> FastAPI:
    app = FastAPI(**kwargs)

    @app.get("/things/{thing_id}")
    def thing(thing_id: str) -> dict[str, str]:
        return {"thing": thing_id}

    return app


def _route_count(tel: hoptel.Telemetry, route: str) -> float:
    for family in tel.registry.collect():
        for sample in family.samples:
            if sample.name == "http_server_request_duration_seconds_count" and sample.labels["http_route"] == route:
                return sample.value
    return 0.0


def test_a_starlette_app_gets_hoptel_server_spans_and_metrics(
    telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A plain Starlette app under instrument(): one hoptel SERVER span per request, with its route, and metrics."""
    hoptel.instrument(telemetry)
    with LogRecords("hoptel.instrument") as logs:
        _get(http_app(), "/items/1", "/items/2", "/missing")
    spans = _server_spans(receiver, telemetry, 3)
    assert sorted((s.scope_name, s.name, s.attributes["http.response.status_code"]) for s in spans) == [
        ("hoptel", "GET /items/{item_id}", 200),
        ("hoptel", "GET /items/{item_id}", 200),
        ("hoptel", "GET /missing", 404),
    ]
    assert _route_count(telemetry, "/items/{item_id}") == 2
    assert logs.messages() == []


def test_a_fastapi_app_gets_hoptel_server_spans(telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """A FastAPI app (its own telemetry off) under instrument(): one hoptel SERVER span per request, and metrics."""
    hoptel.instrument(telemetry)
    _get(_fastapi_app(telemetry={"tracing": False}), "/things/1", "/things/2")
    spans = _server_spans(receiver, telemetry, 2)
    assert [(s.scope_name, s.name) for s in spans] == [("hoptel", "GET /things/{thing_id}")] * 2
    assert _route_count(telemetry, "/things/{thing_id}") == 2


def test_fastapi_own_telemetry_wins_with_one_warning(telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """FastAPI tracing its own requests: hoptel steps aside, one SERVER span per request (FastAPI's), one warning."""
    hoptel.instrument(telemetry)
    with LogRecords("hoptel.instrument") as logs:
        _get(_fastapi_app(), "/things/1", "/things/2")
    spans = _server_spans(receiver, telemetry, 2)
    assert [(s.scope_name, s.name) for s in spans] == [("fastapi", "GET /things/{thing_id}")] * 2
    assert len(logs.messages()) == 1
    assert "fastapi already traces" in logs.messages()[0]


def test_an_app_given_hoptel_middleware_is_not_wrapped_again(
    telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """add_middleware(hoptel.ASGIMiddleware) or hoptel.ASGIMiddleware(app) under instrument(): still one span."""
    hoptel.instrument(telemetry)
    added = http_app()
    added.add_middleware(hoptel.ASGIMiddleware, telemetry=telemetry)
    with LogRecords("hoptel.instrument") as logs:
        _get(added, "/items/1")
        _get(hoptel.ASGIMiddleware(http_app(), telemetry), "/items/2")
    spans = _server_spans(receiver, telemetry, 2)
    assert [(s.scope_name, s.name) for s in spans] == [("hoptel", "GET /items/{item_id}")] * 2
    assert logs.messages() == []


def test_the_official_asgi_middleware_wins_with_one_warning(
    telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """OpenTelemetry's OpenTelemetryMiddleware, added or wrapped around the app: one SERVER span each, theirs."""
    hoptel.instrument(telemetry)
    provider = telemetry.tracer_provider
    added = http_app()
    added.add_middleware(OpenTelemetryMiddleware, tracer_provider=provider)
    with LogRecords("hoptel.instrument") as logs:
        _get(added, "/items/1", "/items/2")
        _get(OpenTelemetryMiddleware(http_app(), tracer_provider=provider), "/items/3")
    spans = _server_spans(receiver, telemetry, 3)
    assert {s.scope_name for s in spans} == {ASGI_SCOPE}
    assert len(spans) == 3
    assert len(logs.messages()) == 1  # once for all apps
    assert "official OpenTelemetry" in logs.messages()[0]


def test_uninstrument_restores_starlette_and_fastapi() -> None:
    """uninstrument() puts the very same build_middleware_stack methods back; a stack built then is the app's own."""
    originals = (Starlette.__dict__["build_middleware_stack"], FastAPI.__dict__["build_middleware_stack"])
    hoptel.instrument()
    assert (Starlette.__dict__["build_middleware_stack"], FastAPI.__dict__["build_middleware_stack"]) != originals
    hoptel.uninstrument()
    assert (Starlette.__dict__["build_middleware_stack"], FastAPI.__dict__["build_middleware_stack"]) == originals
    assert type(http_app().build_middleware_stack()).__module__.startswith("starlette.")


def test_opentelemetry_instrument_traces_asgi_apps(receiver: OTLPReceiver) -> None:
    """``opentelemetry-instrument`` with hoptel's distro: one SERVER span per request of an unchanged app.

    The Starlette app's is hoptel's; the FastAPI app's is FastAPI's own (on by default), hoptel stepping aside.
    """
    run_instrumented(APP, receiver, "zerocode-asgi", OTEL_PYTHON_DISTRO="hoptel", OTEL_PYTHON_CONFIGURATOR="hoptel")
    is_server: Callable[[ReceivedSpan], bool] = lambda span: span.kind == "SERVER"  # noqa: E731
    spans = receiver.wait_for_spans(2, predicate=is_server)
    assert sorted((s.scope_name, s.name) for s in spans) == [
        ("fastapi", "GET /things/{thing_id}"),
        ("hoptel", "GET /items/{item_id}"),
    ]
    assert len([span for span in receiver.spans() if is_server(span)]) == 2  # the process flushed at exit
