"""hoptel.HTTPTransport / AsyncHTTPTransport against a real uvicorn server: spans, metrics, errors, streaming."""

from __future__ import annotations

import time

import httpx
import pytest
from httptest_support import (
    CLIENT_DURATION,
    TIMEOUT,
    Observed,
    Serve,
    build_app,
    client_labels,
    histogram_count,
    openmetrics_text,
    parse_traceparent,
)
from support.fixture_types import TelemetryFactory

import hoptel
from hoptel.receiver import OTLPReceiver


def test_sync_client_span_has_stable_semconv_attributes(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A sync request gives one CLIENT span with method, redacted url.full, server address/port and status."""
    base = serve(build_app(observed))
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=telemetry), timeout=TIMEOUT) as client:
        response = client.get(f"{base}/items/7", params={"token": "s3cret", "page": "2"})
    assert response.status_code == 200
    (span,) = receiver.wait_for_spans(1)
    port = int(base.rsplit(":", 1)[1])
    assert span.kind == "CLIENT"
    assert span.name == "GET"
    assert span.status_code == "UNSET"
    assert span.attributes == {
        "http.request.method": "GET",
        "url.full": f"{base}/items/7?token=REDACTED&page=REDACTED",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
    }
    assert parse_traceparent(observed.headers["item"]["traceparent"]) == (span.trace_id, span.span_id, True)
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 1


async def test_async_client_span_and_metric(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """An async request gives one CLIENT span, injects it, and observes the duration once."""
    base = serve(build_app(observed))
    async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=telemetry), timeout=TIMEOUT) as client:
        response = await client.get(f"{base}/items/8")
    assert response.json() == {"item": "8"}
    (span,) = receiver.wait_for_spans(1)
    assert (span.kind, span.name, span.attributes["http.response.status_code"]) == ("CLIENT", "GET", 200)
    assert parse_traceparent(observed.headers["item"]["traceparent"]) == (span.trace_id, span.span_id, True)
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 1


async def test_nonstandard_method_is_other(serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """A non-standard method is _OTHER in the attribute and the metric label, and the span is named HTTP."""
    base = serve(build_app())
    async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=telemetry), timeout=TIMEOUT) as client:
        response = await client.request("PURGE", f"{base}/items/8")
    assert response.status_code == 405  # the route only allows GET
    (span,) = receiver.wait_for_spans(1)
    assert span.name == "HTTP"
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "PURGE"
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("405", "405", "_OTHER")) == 1


@pytest.mark.parametrize("code", [404, 500, 503])
def test_error_statuses_mark_the_client_span(
    code: int, serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """4xx and 5xx responses end the client span as an error with error.type set to the status code."""
    base = serve(build_app())
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=telemetry), timeout=TIMEOUT) as client:
        assert client.get(f"{base}/status/{code}").status_code == code
    (span,) = receiver.wait_for_spans(1)
    assert span.status_code == "ERROR"
    assert span.attributes["error.type"] == str(code)
    assert span.attributes["http.response.status_code"] == code
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels(str(code), str(code))) == 1


def test_connection_refused_is_recorded_and_reraised(
    refused_url: str, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A refused connection ends the span with error.type=ConnectError and raises httpx.ConnectError unchanged."""
    inner = httpx.HTTPTransport()
    client = httpx.Client(transport=hoptel.HTTPTransport(inner, telemetry=telemetry), timeout=TIMEOUT)
    with client, pytest.raises(httpx.ConnectError) as raised:
        client.get(refused_url)
    (span,) = receiver.wait_for_spans(1)
    assert span.status_code == "ERROR"
    assert span.attributes["error.type"] == "ConnectError"
    assert "http.response.status_code" not in span.attributes
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"].endswith("ConnectError")
    assert event.attributes["exception.message"] == str(raised.value)
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("", "ConnectError")) == 1


async def test_async_connection_refused_is_recorded_and_reraised(
    refused_url: str, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """The async transport records a refused connection the same way and re-raises it."""
    async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=telemetry), timeout=TIMEOUT) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(refused_url)
    (span,) = receiver.wait_for_spans(1)
    assert (span.status_code, span.attributes["error.type"]) == ("ERROR", "ConnectError")
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("", "ConnectError")) == 1


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_read_timeout_is_recorded_and_reraised(
    use_async: bool, serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A read timeout ends the span with error.type=ReadTimeout and raises httpx.ReadTimeout."""
    base = serve(build_app())
    timeout = httpx.Timeout(10.0, read=0.05)
    url = f"{base}/slow?s=0.3"
    if use_async:
        async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=telemetry)) as aclient:
            with pytest.raises(httpx.ReadTimeout):
                await aclient.get(url, timeout=timeout)
    else:
        client = httpx.Client(transport=hoptel.HTTPTransport(telemetry=telemetry))
        with client, pytest.raises(httpx.ReadTimeout):
            client.get(url, timeout=timeout)
    (span,) = receiver.wait_for_spans(1)
    assert (span.status_code, span.attributes["error.type"]) == ("ERROR", "ReadTimeout")
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("", "ReadTimeout")) == 1


def test_timeout_while_reading_body_is_recorded(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A read timeout in the middle of the body ends the span with the status and error.type=ReadTimeout."""
    base = serve(build_app(observed))
    client = httpx.Client(transport=hoptel.HTTPTransport(telemetry=telemetry))
    with client, client.stream("GET", f"{base}/stream", timeout=httpx.Timeout(10.0, read=0.1)) as response:
        chunks = response.iter_bytes()
        assert next(chunks) == b"first,"
        with pytest.raises(httpx.ReadTimeout):
            next(chunks)  # the server holds the second chunk until the gate opens
    (span,) = receiver.wait_for_spans(1)
    assert (span.status_code, span.attributes["error.type"]) == ("ERROR", "ReadTimeout")
    assert span.attributes["http.response.status_code"] == 200
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200", "ReadTimeout")) == 1


def test_streamed_response_ends_span_after_last_chunk(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A streamed body: the span and the observation end after the last chunk is read, not at the headers."""
    base = serve(build_app(observed))
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=telemetry), timeout=TIMEOUT) as client:
        with client.stream("GET", f"{base}/stream") as response:
            chunks = response.iter_bytes()
            assert next(chunks) == b"first,"
            assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 0
            gate_opened = time.time_ns()
            observed.gate.set()  # only now does the server send the second chunk
            assert b"".join(chunks) == b"second"
            assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 1
        assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 1
    (span,) = receiver.wait_for_spans(1)
    assert span.end_ns >= gate_opened
    assert span.status_code == "UNSET"


def test_response_closed_early_ends_span_at_close(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A streamed response closed before its body was read ends the span when it is closed."""
    base = serve(build_app(observed))
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=telemetry), timeout=TIMEOUT) as client:
        with client.stream("GET", f"{base}/stream") as response:
            assert response.status_code == 200
            assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 0
            before_close = time.time_ns()
        assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 1
    (span,) = receiver.wait_for_spans(1)
    assert span.end_ns >= before_close


async def test_async_streamed_response_ends_span_after_last_chunk(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """The async twin: the span ends after the last chunk was read."""
    base = serve(build_app(observed))
    client = httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=telemetry), timeout=TIMEOUT)
    async with client, client.stream("GET", f"{base}/stream") as response:
        chunks = response.aiter_bytes()
        assert await anext(chunks) == b"first,"
        assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 0
        gate_opened = time.time_ns()
        observed.gate.set()
        assert [chunk async for chunk in chunks] == [b"second"]
        assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 1
    (span,) = receiver.wait_for_spans(1)
    assert span.end_ns >= gate_opened


def test_filter_false_sends_request_untouched(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """filter=... returning False: no span, no metric, no propagation header; True: traced as usual."""
    base = serve(build_app(observed))
    transport = hoptel.HTTPTransport(telemetry=telemetry, filter=lambda request: request.url.path != "/items/skip")
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        client.get(f"{base}/items/skip")
        assert "traceparent" not in observed.headers["item"]
        assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 0
        client.get(f"{base}/items/traced")
        assert "traceparent" in observed.headers["item"]
    spans = receiver.wait_for_spans(1)
    telemetry.force_flush()
    assert [span.attributes["url.full"] for span in receiver.spans()] == [f"{base}/items/traced"]
    assert len(spans) == 1
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 1


def test_header_allow_list_and_never_recorded_headers(
    serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """Only allow-listed header values are recorded, as lists; credentials never, even when listed."""
    base = serve(build_app())
    transport = hoptel.HTTPTransport(
        telemetry=telemetry,
        record_request_headers=["X-Request-Id", "Authorization", "Cookie", "Proxy-Authorization"],
        record_response_headers=["x-resp", "set-cookie", "x-absent"],
    )
    headers = [
        ("x-request-id", "abc"),
        ("x-request-id", "def"),
        ("authorization", "Bearer s3cret"),
        ("cookie", "session=s3cret"),
        ("proxy-authorization", "Basic s3cret"),
        ("x-other", "not-listed"),
    ]
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        client.get(f"{base}/items/1", headers=headers)
    (span,) = receiver.wait_for_spans(1)
    recorded = {key: value for key, value in span.attributes.items() if ".header." in key}
    assert recorded == {
        "http.request.header.x-request-id": ["abc", "def"],
        "http.response.header.x-resp": ["r1"],
    }
    assert "s3cret" not in repr(span.attributes)


def test_sampled_observation_carries_trace_id_exemplar(
    serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A sampled request's duration observation carries its trace_id as an OpenMetrics exemplar."""
    base = serve(build_app())
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=telemetry), timeout=TIMEOUT) as client:
        client.get(f"{base}/items/1")
    (span,) = receiver.wait_for_spans(1)
    exposition = openmetrics_text(telemetry)
    assert f'# {{trace_id="{span.trace_id}"}}' in exposition


def test_unsampled_request_is_measured_and_propagated_without_span(
    serve: Serve, observed: Observed, make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """Unsampled: the duration is still observed (no exemplar) and a not-sampled traceparent is sent."""
    tel = make_telemetry(traces_sampler="always_off")
    base = serve(build_app(observed))
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=tel), timeout=TIMEOUT) as client:
        client.get(f"{base}/items/1")
    assert parse_traceparent(observed.headers["item"]["traceparent"])[2] is False
    assert histogram_count(tel, CLIENT_DURATION, client_labels("200")) == 1
    assert "trace_id" not in openmetrics_text(tel)
    tel.force_flush()
    assert receiver.spans() == []


def test_disabled_sdk_passes_requests_through(
    serve: Serve, observed: Observed, make_telemetry: TelemetryFactory
) -> None:
    """OTEL_SDK_DISABLED=true: the transport forwards requests untouched, no header, no metric."""
    tel = make_telemetry(sdk_disabled="true")
    base = serve(build_app(observed))
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=tel), timeout=TIMEOUT) as client:
        assert client.get(f"{base}/items/1").status_code == 200
    assert "traceparent" not in observed.headers["item"]
    assert histogram_count(tel, CLIENT_DURATION, client_labels("200")) == 0
