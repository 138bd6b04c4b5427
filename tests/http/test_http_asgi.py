"""hoptel.ASGIMiddleware under uvicorn: server spans, route templates, statuses, errors, context, pass-through."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httptest_support import (
    SERVER_DURATION,
    TIMEOUT,
    Observed,
    Serve,
    build_app,
    openmetrics_text,
    series,
    wait_for_count,
)
from starlette.applications import Starlette
from support.fixture_types import TelemetryFactory
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.receiver import OTLPReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def server_labels(route: str, status: str, method: str = "GET") -> dict[str, str]:
    """The ``http_server_request_duration_seconds`` labels of one request."""
    return {"http_request_method": method, "http_route": route, "http_response_status_code": status}


def instrumented(tel: hoptel.Telemetry, observed: Observed | None = None, **options: Any) -> Starlette:
    """The test app with the middleware added the Starlette way."""
    app = build_app(observed)
    app.add_middleware(hoptel.ASGIMiddleware, telemetry=tel, **options)
    return app


def get(url: str, **kwargs: Any) -> httpx.Response:
    """One request from a plain (uninstrumented) httpx client."""
    with httpx.Client(timeout=TIMEOUT) as client:
        return client.get(url, **kwargs)


def test_server_span_uses_route_template_and_remote_parent(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """The SERVER span continues the incoming traceparent and is named and labelled by the route template."""
    base = serve(instrumented(telemetry, observed))
    assert get(f"{base}/items/42?q=1", headers={"traceparent": TRACEPARENT}).status_code == 200
    (span,) = receiver.wait_for_spans(1)
    assert (span.kind, span.name, span.status_code) == ("SERVER", "GET /items/{item_id}", "UNSET")
    assert (span.trace_id, span.parent_span_id) == (TRACE_ID, PARENT_ID)
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["url.path"] == "/items/42"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["server.port"] == int(base.rsplit(":", 1)[1])
    assert span.attributes["client.address"] == "127.0.0.1"
    handler = observed.spans["handler"]
    assert (format(handler.trace_id, "032x"), format(handler.span_id, "016x")) == (span.trace_id, span.span_id)
    assert wait_for_count(telemetry, SERVER_DURATION, server_labels("/items/{item_id}", "200")) == 1
    assert [labels["http_route"] for labels in series(telemetry, SERVER_DURATION)] == ["/items/{item_id}"]


@pytest.mark.parametrize(("code", "error"), [(201, False), (404, False), (503, True)])
def test_status_comes_from_response_start(
    code: int, error: bool, serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """The span and metric carry the status the app sent; only 5xx marks a server span as an error."""
    base = serve(instrumented(telemetry))
    assert get(f"{base}/status/{code}").status_code == code
    (span,) = receiver.wait_for_spans(1)
    assert span.attributes["http.response.status_code"] == code
    assert span.status_code == ("ERROR" if error else "UNSET")
    assert ("error.type" in span.attributes) is error
    assert wait_for_count(telemetry, SERVER_DURATION, server_labels("/status/{code:int}", str(code))) == 1


def test_nonstandard_method_names_span_http(serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """A non-standard method: span named HTTP plus the template, method _OTHER with the original kept."""
    base = serve(instrumented(telemetry))
    with httpx.Client(timeout=TIMEOUT) as client:
        assert client.request("PURGE", f"{base}/items/1").status_code == 405
    (span,) = receiver.wait_for_spans(1)
    assert span.name == "HTTP /items/{item_id}"
    assert (span.attributes["http.request.method"], span.attributes["http.request.method_original"]) == (
        "_OTHER",
        "PURGE",
    )
    assert wait_for_count(telemetry, SERVER_DURATION, server_labels("/items/{item_id}", "405", "_OTHER")) == 1


def test_unknown_route_is_never_a_raw_path_label(
    serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A path no route matches is a 404 labelled with the empty route, not with the path."""
    base = serve(instrumented(telemetry))
    for path in ("/nope/1", "/nope/2", "/items/1/extra"):
        assert get(f"{base}{path}").status_code == 404
    spans = receiver.wait_for_spans(3)
    assert {span.name for span in spans} == {"GET"}
    assert all("http.route" not in span.attributes for span in spans)
    assert wait_for_count(telemetry, SERVER_DURATION, server_labels("", "404"), expected=3) == 3
    assert series(telemetry, SERVER_DURATION) == [server_labels("", "404")]


def test_app_exception_is_500_and_reraised(serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """An exception in the app ends the span as a 500 with the exception recorded once, and propagates."""
    caught: list[BaseException] = []
    app = instrumented(telemetry)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            caught.append(exc)
            raise

    base = serve(outer)
    assert get(f"{base}/boom").status_code == 500  # sent by Starlette's ServerErrorMiddleware, then re-raised
    (span,) = receiver.wait_for_spans(1)
    assert (span.name, span.status_code) == ("GET /boom", "ERROR")
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "RuntimeError"
    (event,) = span.events
    assert (event.name, event.attributes["exception.message"]) == ("exception", "boom")
    assert len(caught) == 1
    assert type(caught[0]) is RuntimeError
    assert str(caught[0]) == "boom"
    assert wait_for_count(telemetry, SERVER_DURATION, server_labels("/boom", "500")) == 1


def test_app_wrapped_directly_raising_before_response(
    serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A bare ASGI app that raises before responding: the middleware records a 500 and re-raises to the server."""

    async def raw(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("no response")

    base = serve(hoptel.ASGIMiddleware(raw, telemetry))
    assert get(f"{base}/anything").status_code == 500  # uvicorn answers for the app that raised
    (span,) = receiver.wait_for_spans(1)
    assert (span.name, span.status_code, span.attributes["error.type"]) == ("GET", "ERROR", "ValueError")
    assert wait_for_count(telemetry, SERVER_DURATION, server_labels("", "500")) == 1


def test_app_returning_without_response_counts_as_500(
    serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """An app that returns without starting a response is recorded as the 500 the server sends."""

    async def silent(scope: Any, receive: Any, send: Any) -> None:
        return None

    base = serve(hoptel.ASGIMiddleware(silent, telemetry))
    assert get(f"{base}/").status_code == 500
    (span,) = receiver.wait_for_spans(1)
    assert (span.status_code, span.attributes["http.response.status_code"]) == ("ERROR", 500)


def test_context_reaches_handler_streamed_body_and_background_task(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """The server span is current in the handler, in a streamed body's iterator and in a background task."""
    base = serve(instrumented(telemetry, observed))
    observed.gate.set()
    assert get(f"{base}/stream").text == "first,second"
    assert get(f"{base}/background").text == "ok"
    spans = {span.name: span for span in receiver.wait_for_spans(2)}
    for label, span in (("stream", spans["GET /stream"]), ("background", spans["GET /background"])):
        seen = observed.spans[label]
        assert (format(seen.trace_id, "032x"), format(seen.span_id, "016x")) == (span.trace_id, span.span_id)


def test_filter_false_passes_request_through(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """filter=... on the URL path returning False: no span, no metric, no current span in the handler."""
    base = serve(instrumented(telemetry, observed, filter=lambda path: path != "/healthz"))
    assert get(f"{base}/healthz", headers={"traceparent": TRACEPARENT}).text == "ok"
    assert get(f"{base}/items/1").status_code == 200
    receiver.wait_for_spans(1)
    telemetry.force_flush()
    assert [span.name for span in receiver.spans()] == ["GET /items/{item_id}"]
    assert not observed.spans["healthz"].is_valid
    assert wait_for_count(telemetry, SERVER_DURATION, server_labels("/items/{item_id}", "200")) == 1
    assert len(series(telemetry, SERVER_DURATION)) == 1


def test_header_allow_list_and_never_recorded_headers(
    serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """Only allow-listed header values are recorded, as lists; credentials never, even when listed."""
    app = instrumented(
        telemetry,
        record_request_headers=["X-Request-Id", "authorization", "cookie", "proxy-authorization"],
        record_response_headers=["X-Resp", "Set-Cookie"],
    )
    base = serve(app)
    headers = [
        ("X-Request-Id", "abc"),
        ("x-request-id", "def"),
        ("Authorization", "Bearer s3cret"),
        ("Cookie", "session=s3cret"),
        ("Proxy-Authorization", "Basic s3cret"),
        ("x-other", "not-listed"),
    ]
    assert get(f"{base}/items/1", headers=headers).status_code == 200
    (span,) = receiver.wait_for_spans(1)
    recorded = {key: value for key, value in span.attributes.items() if ".header." in key}
    assert recorded == {
        "http.request.header.x-request-id": ["abc", "def"],
        "http.response.header.x-resp": ["r1"],
    }
    assert "s3cret" not in repr(span.attributes)


def test_server_observation_carries_exemplar(serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """A sampled server observation carries its trace_id as an OpenMetrics exemplar."""
    base = serve(instrumented(telemetry))
    get(f"{base}/items/1")
    (span,) = receiver.wait_for_spans(1)
    wait_for_count(telemetry, SERVER_DURATION, server_labels("/items/{item_id}", "200"))
    assert f'# {{trace_id="{span.trace_id}"}}' in openmetrics_text(telemetry)


def test_lifespan_passes_through_under_uvicorn(telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """Lifespan startup and shutdown reach the app through the middleware, and make no span or metric."""
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(lifespan=lifespan)
    app.add_middleware(hoptel.ASGIMiddleware, telemetry=telemetry)
    with run_uvicorn(app, lifespan="on"):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]
    telemetry.force_flush()
    assert receiver.spans() == []
    assert series(telemetry, SERVER_DURATION) == []


@pytest.mark.parametrize("scope_type", ["websocket"])
async def test_non_http_scopes_are_handed_over_untouched(
    scope_type: str, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """Websocket scopes reach the app as the very same scope, receive and send objects."""
    received: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        received.append((scope, receive, send))

    async def receive() -> dict[str, Any]:
        return {"type": f"{scope_type}.connect"}

    async def send(message: Any) -> None:
        return None

    scope: dict[str, Any] = {"type": scope_type, "path": "/ws", "headers": [(b"traceparent", TRACEPARENT.encode())]}
    await hoptel.ASGIMiddleware(app, telemetry)(scope, receive, send)
    ((got_scope, got_receive, got_send),) = received
    assert (got_scope, got_receive, got_send) == (scope, receive, send)
    assert got_scope is scope
    assert got_send is send
    telemetry.force_flush()
    assert receiver.spans() == []
    assert series(telemetry, SERVER_DURATION) == []


async def test_lifespan_shutdown_flushes_before_it_is_reported(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """At lifespan shutdown a span queued behind a long batch delay is exported before the server hears "complete".

    Every lifespan message the app sends is forwarded, in order.
    """
    tel = make_telemetry(bsp_schedule_delay=600_000)
    forwarded: list[str] = []
    exported_at_complete: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        tel.tracer.start_span("before-shutdown").end()
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: Any) -> None:
        forwarded.append(message["type"])
        if message["type"] == "lifespan.shutdown.complete":
            exported_at_complete.append(len(receiver.spans()))

    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await hoptel.ASGIMiddleware(app, tel)(scope, receive, send)
    assert forwarded == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert exported_at_complete == [1]
    assert series(tel, SERVER_DURATION) == []


def test_disabled_sdk_passes_requests_through(
    serve: Serve, observed: Observed, make_telemetry: TelemetryFactory
) -> None:
    """OTEL_SDK_DISABLED=true: the middleware calls the app untouched, records no metric."""
    tel = make_telemetry(sdk_disabled="true")
    base = serve(instrumented(tel, observed))
    assert get(f"{base}/items/1").status_code == 200
    assert not observed.spans["handler"].is_valid
    assert series(tel, SERVER_DURATION) == []
