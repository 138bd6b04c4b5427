"""OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*: captured headers as string arrays, sanitized, never secrets.

A real httpx client calls a real uvicorn serving an app behind hoptel's middleware; the CLIENT and SERVER spans are
read at the OTLP receiver.
"""

from __future__ import annotations

import httpx
import pytest
from conventions_support import headers_app, only_span
from support.fixture_types import TelemetryFactory
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

TIMEOUT = httpx.Timeout(10.0)
REQUEST_HEADERS = [
    ("X-Tenant", "acme"),
    ("X-Request-Id", "r-1"),
    ("X-Request-Id", "r-2"),
    ("X-Api-Secret", "s3cret"),
    ("Authorization", "Bearer s3cret"),
    ("Cookie", "session=s3cret"),
    ("X-Extra", "kw"),
]


def _headers(span: ReceivedSpan, prefix: str) -> dict[str, object]:
    return {key.removeprefix(prefix): value for key, value in span.attributes.items() if key.startswith(prefix)}


def _exchange(tel: hoptel.Telemetry, receiver: OTLPReceiver, **options: list[str]) -> tuple[ReceivedSpan, ...]:
    """One request from an instrumented client to an instrumented server; returns (client span, server span)."""
    app = hoptel.ASGIMiddleware(
        headers_app,
        telemetry=tel,
        record_request_headers=options.get("server_request", []),
        record_response_headers=options.get("server_response", []),
    )
    transport = hoptel.HTTPTransport(
        telemetry=tel,
        record_request_headers=options.get("client_request", []),
        record_response_headers=options.get("client_response", []),
    )
    with run_uvicorn(app) as url, httpx.Client(transport=transport, timeout=TIMEOUT) as client:
        response = client.get(url + "/items", headers=REQUEST_HEADERS)
        assert response.status_code == 200
        assert response.json()["x-tenant"] == "acme"  # capture changes nothing the app sees
    assert tel.force_flush()
    return only_span(receiver, "CLIENT"), only_span(receiver, "SERVER")


def test_server_headers_by_name_and_regex_sanitized(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """SERVER_REQUEST / _RESPONSE take names and whole-name regexes (any case); SANITIZE_FIELDS redacts values."""
    tel = make_telemetry(
        instrumentation_http_capture_headers_server_request="X-TENANT,x-request-.*,x-api-.*",
        instrumentation_http_capture_headers_server_response="x-resp,x-session-.*,content-.*",
        instrumentation_http_capture_headers_sanitize_fields="secret,session",
    )
    _, server = _exchange(tel, receiver)
    assert _headers(server, "http.request.header.") == {
        "x-tenant": ["acme"],
        "x-request-id": ["r-1", "r-2"],
        "x-api-secret": ["[REDACTED]"],
    }
    assert _headers(server, "http.response.header.") == {
        "x-resp": ["r1", "r2"],
        "x-session-token": ["[REDACTED]"],
        "content-type": ["application/json"],  # the app's headers (the server adds content-length later)
    }


def test_client_headers_by_name_and_regex_sanitized(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """CLIENT_REQUEST / _RESPONSE apply to the httpx transport the same way."""
    tel = make_telemetry(
        instrumentation_http_capture_headers_client_request="x-tenant,X-Request-.*,x-api-secret",
        instrumentation_http_capture_headers_client_response="x-r.*,x-session-token",
        instrumentation_http_capture_headers_sanitize_fields=".*secret.*,token",
    )
    client, server = _exchange(tel, receiver)
    assert _headers(client, "http.request.header.") == {
        "x-tenant": ["acme"],
        "x-request-id": ["r-1", "r-2"],
        "x-api-secret": ["[REDACTED]"],
    }
    assert _headers(client, "http.response.header.") == {"x-resp": ["r1", "r2"], "x-session-token": ["[REDACTED]"]}
    assert _headers(server, "http.request.header.") == {}  # the server variables are separate


def test_never_recorded_headers_win_over_variables_and_options(
    make_telemetry: TelemetryFactory, receiver: OTLPReceiver
) -> None:
    """With ``.*`` and the keyword options naming them, authorization, cookie and set-cookie are never recorded."""
    tel = make_telemetry(
        instrumentation_http_capture_headers_server_request=".*",
        instrumentation_http_capture_headers_server_response=".*",
        instrumentation_http_capture_headers_client_request=".*",
        instrumentation_http_capture_headers_client_response=".*",
    )
    secrets = ["authorization", "cookie", "set-cookie"]
    spans = _exchange(
        tel, receiver, server_request=secrets, server_response=secrets, client_request=secrets, client_response=secrets
    )
    for span in spans:
        recorded = set(_headers(span, "http.request.header.")) | set(_headers(span, "http.response.header."))
        assert recorded >= {"x-tenant", "x-resp"}
        assert not recorded & set(secrets)
        assert "Bearer" not in repr(span.attributes)
        assert "session=s3cret" not in repr(span.attributes)


def test_keyword_options_and_variables_combine(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """record_*_headers= and the variables add up; the sanitize variable applies to names the options give too."""
    tel = make_telemetry(
        instrumentation_http_capture_headers_server_request="x-tenant",
        instrumentation_http_capture_headers_client_response="x-resp",
        instrumentation_http_capture_headers_sanitize_fields="secret",
    )
    client, server = _exchange(
        tel, receiver, server_request=["X-Extra", "x-api-secret"], client_response=["x-session-token"]
    )
    assert _headers(server, "http.request.header.") == {
        "x-tenant": ["acme"],
        "x-extra": ["kw"],
        "x-api-secret": ["[REDACTED]"],
    }
    assert _headers(client, "http.response.header.") == {"x-resp": ["r1", "r2"], "x-session-token": ["s3cret"]}


def test_nothing_configured_records_no_header(make_telemetry: TelemetryFactory, receiver: OTLPReceiver) -> None:
    """By default no header value goes on any span."""
    for span in _exchange(make_telemetry(), receiver):
        assert not [key for key in span.attributes if ".header." in key]


@pytest.mark.parametrize("sanitize", ["", "nomatch"])
def test_unsanitized_values_are_kept(make_telemetry: TelemetryFactory, receiver: OTLPReceiver, sanitize: str) -> None:
    """Without a matching sanitize pattern a captured value is recorded as sent."""
    tel = make_telemetry(
        instrumentation_http_capture_headers_server_request="x-api-secret",
        instrumentation_http_capture_headers_sanitize_fields=sanitize,
    )
    _, server = _exchange(tel, receiver)
    assert _headers(server, "http.request.header.") == {"x-api-secret": ["s3cret"]}
