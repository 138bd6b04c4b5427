"""OTEL_PYTHON_EXCLUDED_URLS and the per-library HTTPX / ASGI variants: excluded requests still work, untraced.

Requests go through real httpx transports to a real uvicorn; spans are read at the OTLP receiver and the metrics in
the Telemetry's registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from conventions_support import headers_app, http_count
from support.fixture_types import TelemetryFactory
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.receiver import OTLPReceiver

TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture
def plain_server() -> Iterator[str]:
    """Uvicorn serving the header-reporting app without instrumentation; yields its base URL."""
    with run_uvicorn(headers_app) as url:
        yield url


def _client_spans(receiver: OTLPReceiver) -> list[str]:
    return sorted(span.attributes["url.full"] for span in receiver.spans() if span.kind == "CLIENT")


def test_httpx_excluded_url_gets_no_span_metric_or_header(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, plain_server: str
) -> None:
    """A URL matching OTEL_PYTHON_EXCLUDED_URLS (re.search in the full URL) is sent untouched and answered."""
    tel = make_telemetry(python_excluded_urls=r"/healthz$,ready\?probe")
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=tel), timeout=TIMEOUT) as client:
        for path in ("/healthz", "/ready?probe=1"):
            response = client.get(plain_server + path)
            assert response.status_code == 200
            assert "traceparent" not in response.json()
        traced = client.get(plain_server + "/healthz/deep")
        assert "traceparent" in traced.json()
    assert tel.force_flush()
    assert _client_spans(receiver) == [plain_server + "/healthz/deep"]
    assert http_count(tel, "client") == 1


async def test_async_transport_excludes_too(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, plain_server: str
) -> None:
    """hoptel.AsyncHTTPTransport reads the same variables."""
    tel = make_telemetry(python_httpx_excluded_urls="/skip")
    async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(telemetry=tel), timeout=TIMEOUT) as client:
        assert "traceparent" not in (await client.get(plain_server + "/skip/me")).json()
        assert "traceparent" in (await client.get(plain_server + "/keep")).json()
    assert tel.force_flush()
    assert _client_spans(receiver) == [plain_server + "/keep"]
    assert http_count(tel, "client") == 1


@pytest.mark.parametrize(
    ("environ", "excluded"),
    [
        ({"OTEL_PYTHON_EXCLUDED_URLS": "/a"}, {"/a"}),
        ({"OTEL_PYTHON_EXCLUDED_URLS": "/a", "OTEL_PYTHON_HTTPX_EXCLUDED_URLS": "/b"}, {"/b"}),
        ({"OTEL_PYTHON_EXCLUDED_URLS": "/a", "OTEL_PYTHON_HTTPX_EXCLUDED_URLS": ""}, set()),
        ({"OTEL_PYTHON_EXCLUDED_URLS": "/a", "OTEL_PYTHON_ASGI_EXCLUDED_URLS": "/b"}, {"/a"}),
    ],
)
def test_per_library_variable_wins_over_the_generic_one(
    make_telemetry: TelemetryFactory,
    receiver: OTLPReceiver,
    plain_server: str,
    environ: dict[str, str],
    excluded: set[str],
) -> None:
    """OTEL_PYTHON_HTTPX_EXCLUDED_URLS, when set (even empty), replaces OTEL_PYTHON_EXCLUDED_URLS for httpx."""
    overrides = {key.removeprefix("OTEL_").lower(): value for key, value in environ.items()}
    tel = make_telemetry(**overrides)
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=tel), timeout=TIMEOUT) as client:
        for path in ("/a", "/b"):
            assert client.get(plain_server + path).status_code == 200
    assert tel.force_flush()
    assert _client_spans(receiver) == sorted(plain_server + p for p in {"/a", "/b"} - excluded)


def test_filter_and_excluded_urls_combine(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver, plain_server: str
) -> None:
    """A request is traced only when filter= accepts it and no excluded-URL pattern matches it."""
    tel = make_telemetry(python_excluded_urls="/by-env")
    transport = hoptel.HTTPTransport(telemetry=tel, filter=lambda request: request.url.path != "/by-filter")
    with httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        for path in ("/by-env", "/by-filter", "/traced"):
            assert client.get(plain_server + path).status_code == 200
    assert tel.force_flush()
    assert _client_spans(receiver) == [plain_server + "/traced"]


def test_asgi_excluded_url_is_served_untraced(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """OTEL_PYTHON_ASGI_EXCLUDED_URLS is searched in scheme://host/path: no SERVER span, no metric, same answer."""
    tel = make_telemetry(python_asgi_excluded_urls=r"127\.0\.0\.1:\d+/internal/,/healthz$")
    app = hoptel.ASGIMiddleware(headers_app, telemetry=tel)
    with run_uvicorn(app) as url, httpx.Client(timeout=TIMEOUT) as client:
        for path in ("/internal/stats", "/healthz", "/orders?x=/healthz"):
            response = client.get(url + path, headers={"x-probe": path})
            assert response.status_code == 200
            assert json.loads(response.text)["x-probe"] == path
    assert tel.force_flush()
    servers = [span for span in receiver.spans() if span.kind == "SERVER"]
    assert [span.attributes["url.path"] for span in servers] == ["/orders"]  # the query is not part of the URL
    assert http_count(tel, "server") == 1


def test_asgi_filter_and_generic_variable_combine(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """The middleware's path filter= and OTEL_PYTHON_EXCLUDED_URLS both apply."""
    tel = make_telemetry(python_excluded_urls="/by-env")
    app = hoptel.ASGIMiddleware(headers_app, telemetry=tel, filter=lambda path: path != "/by-filter")
    with run_uvicorn(app) as url, httpx.Client(timeout=TIMEOUT) as client:
        for path in ("/by-env", "/by-filter", "/traced"):
            assert client.get(url + path).status_code == 200
    assert tel.force_flush()
    assert [span.attributes["url.path"] for span in receiver.spans() if span.kind == "SERVER"] == ["/traced"]


@pytest.mark.parametrize(
    "variable",
    [
        "OTEL_PYTHON_EXCLUDED_URLS",
        "OTEL_PYTHON_HTTPX_EXCLUDED_URLS",
        "OTEL_PYTHON_ASGI_EXCLUDED_URLS",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS",
        "HOPTEL_CAPTURE_GRPC_METADATA_SERVER_REQUEST",
        "HOPTEL_CAPTURE_GRPC_METADATA_CLIENT_REQUEST",
    ],
)
def test_bad_regular_expression_fails_setup_naming_the_variable(variable: str) -> None:
    """A pattern that does not compile is a ValueError at setup() naming the variable and the pattern."""
    environ = {variable: "ok, x-(unclosed", "OTEL_TRACES_EXPORTER": "none"}
    with pytest.raises(ValueError, match=variable) as raised:
        hoptel.setup("svc", environ=environ, metrics_addr="off", signals=False)
    assert "x-(unclosed" in str(raised.value)
