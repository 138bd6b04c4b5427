"""Helpers for the HTTP integration tests: a Starlette test app and metric lookups."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable

import anyio.to_thread
import httpx
from opentelemetry import trace
from prometheus_client.openmetrics.exposition import generate_latest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from support.uvicorn_server import ASGIApp

import hoptel
from hoptel.receiver.model import ReceivedSpan

Serve = Callable[[ASGIApp], str]

TIMEOUT = httpx.Timeout(10.0)
GATE_TIMEOUT_S = 10.0
SERVER_DURATION = "http_server_request_duration_seconds"
CLIENT_DURATION = "http_client_request_duration_seconds"


class Observed:
    """What the app's handlers saw: span contexts by label, and a gate for the streaming endpoint."""

    def __init__(self) -> None:
        self.spans: dict[str, trace.SpanContext] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.gate = threading.Event()

    def current(self, label: str) -> None:
        self.spans[label] = trace.get_current_span().get_span_context()


def build_app(observed: Observed | None = None, routes: list[Route] | None = None) -> Starlette:
    """The Starlette app the tests call: templated routes, statuses, errors, streaming and a background task."""
    seen = observed or Observed()

    async def item(request: Request) -> Response:
        seen.current("handler")
        seen.headers["item"] = dict(request.headers)
        return JSONResponse(
            {"item": request.path_params["item_id"]},
            headers={"x-resp": "r1", "set-cookie": "session=s3cret"},
        )

    async def status(request: Request) -> Response:
        return PlainTextResponse("status", status_code=request.path_params["code"])

    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("s", "0.5")))
        return PlainTextResponse("slow")

    async def chunks() -> AsyncIterator[bytes]:
        seen.current("stream")
        yield b"first,"
        await anyio.to_thread.run_sync(seen.gate.wait, GATE_TIMEOUT_S)
        yield b"second"

    async def stream(request: Request) -> Response:
        return StreamingResponse(chunks(), media_type="text/plain")

    async def background(request: Request) -> Response:
        return PlainTextResponse("ok", background=BackgroundTask(seen.current, "background"))

    async def healthz(request: Request) -> Response:
        seen.current("healthz")
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/items/{item_id}", item),
            Route("/status/{code:int}", status),
            Route("/boom", boom),
            Route("/slow", slow),
            Route("/stream", stream),
            Route("/background", background),
            Route("/healthz", healthz),
            *(routes or []),
        ]
    )


def by_service(spans: list[ReceivedSpan], service: str) -> list[ReceivedSpan]:
    """The spans of one service."""
    return [span for span in spans if span.service_name == service]


def histogram_count(tel: hoptel.Telemetry, name: str, labels: dict[str, str]) -> float:
    """Observations so far in the histogram series ``name{labels}`` (0 when the series does not exist)."""
    return tel.registry.get_sample_value(f"{name}_count", labels) or 0.0


def wait_for_count(
    tel: hoptel.Telemetry, name: str, labels: dict[str, str], expected: float = 1.0, timeout: float = 5.0
) -> float:
    """Wait (bounded) until ``name{labels}`` has ``expected`` observations; servers observe after the response."""
    deadline = time.monotonic() + timeout
    count = histogram_count(tel, name, labels)
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.01)
        count = histogram_count(tel, name, labels)
    return count


def series(tel: hoptel.Telemetry, name: str) -> list[dict[str, str]]:
    """The label sets of every ``_count`` sample of the histogram ``name``."""
    return [
        dict(sample.labels)
        for metric in tel.registry.collect()
        if metric.name == name
        for sample in metric.samples
        if sample.name == f"{name}_count"
    ]


def openmetrics_text(tel: hoptel.Telemetry) -> str:
    """The registry of ``tel`` in OpenMetrics format, the one that carries exemplars."""
    exposition: bytes = generate_latest(tel.registry)  # type: ignore[no-untyped-call]  # unannotated upstream
    return exposition.decode()


def client_labels(status: str, error_type: str = "", method: str = "GET") -> dict[str, str]:
    """The ``http_client_request_duration_seconds`` labels of a request to 127.0.0.1."""
    return {
        "http_request_method": method,
        "server_address": "127.0.0.1",
        "http_response_status_code": status,
        "error_type": error_type,
    }


def parse_traceparent(value: str) -> tuple[str, str, bool]:
    """Trace id, parent span id and the sampled flag of a ``traceparent`` header."""
    version, trace_id, span_id, flags = value.split("-")
    assert version == "00"
    return trace_id, span_id, bool(int(flags, 16) & 1)
