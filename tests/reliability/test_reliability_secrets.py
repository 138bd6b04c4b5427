"""Secrets stay secret: authorization headers and metadata never reach a span, a log line or a metric.

Each test sends secrets the way real services carry them — gRPC ``authorization``/``cookie`` metadata, HTTP
``Authorization`` and ``Cookie`` headers (even when the user allow-lists them), URL userinfo and query tokens, a
``Set-Cookie`` response header, OTLP exporter headers — through instrumented clients and servers, with hoptel's
own loggers at debug and a collector that refuses once (so the exporter logs its retry). Then every span the
collector received, the metrics in both exposition formats and every JSON log line are searched for each secret.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from reliability_support import ECHO_METHOD, GRPC_OPTIONS, echo_reply, exposition, sync_grpc_server
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.receiver import OTLPReceiver, ReceivedSpan

GRPC_SECRET = "SECRET-grpc-authorization-7f3a"
COOKIE_SECRET = "SECRET-grpc-cookie-2b9c"
OTLP_SECRET = "SECRET-otlp-exporter-header-5d1e"
HTTP_SECRET = "SECRET-http-authorization-91aa"
HTTP_COOKIE_SECRET = "SECRET-http-cookie-44c0"
USERINFO_SECRET = "SECRET-userinfo-password-0e6f"
QUERY_SECRET = "SECRET-query-token-a8d2"
SET_COOKIE_SECRET = "SECRET-set-cookie-77b1"
# hoptel's own loggers and the OTLP exporter's at debug; the frameworks' chatter at its defaults.
DEBUG_LOG = "info,hoptel=debug,opentelemetry=debug,grpc=warning,httpx=warning,httpcore=warning,asyncio=warning"
WAIT_S = 15.0


def _span_text(span: ReceivedSpan) -> str:
    """Everything a span carries, as one string to search."""
    return repr((span.name, span.attributes, span.events, span.status_message, span.resource))


def _assert_nowhere(secrets: list[str], tel: hoptel.Telemetry, receiver: OTLPReceiver, logs: str) -> None:
    openmetrics = generate_openmetrics(tel.registry)  # type: ignore[no-untyped-call]  # prometheus_client: untyped
    metrics = exposition(tel) + openmetrics.decode("utf-8")
    spans = "\n".join(_span_text(span) for span in receiver.spans())
    assert '"level"' in logs, "no JSON log line was captured"
    for secret in secrets:
        assert secret not in spans, f"{secret} in a span"
        assert secret not in metrics, f"{secret} in the metrics"
        assert secret not in logs, f"{secret} in a log line"


def test_grpc_metadata_secrets_stay_out(
    receiver: OTLPReceiver,
    make_telemetry: Callable[..., hoptel.Telemetry],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The gRPC authorization/cookie metadata and OTLP exporter headers appear in no span, metric or log line."""
    tel = make_telemetry(
        "secrets-grpc",
        exporter_otlp_headers=f"authorization=Bearer {OTLP_SECRET}",
        log=DEBUG_LOG,
    )
    receiver.fail_with("unavailable", retry_after_s=0.0, times=1)  # the exporter logs a retry
    metadata = (("authorization", f"Bearer {GRPC_SECRET}"), ("cookie", f"session={COOKIE_SECRET}"))
    with (
        sync_grpc_server(hoptel.server_interceptor(tel)) as target,
        grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel,
    ):
        intercepted = grpc.intercept_channel(channel, hoptel.client_interceptor(tel))
        assert intercepted.unary_unary(ECHO_METHOD, None, None)(b"hello", metadata=metadata, timeout=10) == echo_reply(
            b"hello"
        )
        with pytest.raises(grpc.RpcError) as missing:
            intercepted.unary_unary("/hoptel.rel.Echo/Missing", None, None)(b"x", metadata=metadata, timeout=10)
        assert missing.value.code() is grpc.StatusCode.UNIMPLEMENTED
    receiver.wait_for_spans(4, timeout=WAIT_S)
    tel.shutdown()
    captured = capfd.readouterr()
    _assert_nowhere([GRPC_SECRET, COOKIE_SECRET, OTLP_SECRET], tel, receiver, captured.out + captured.err)


async def _set_cookie_app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """A bare ASGI app answering 200 with a secret Set-Cookie and a harmless X-Visible header."""
    assert scope["type"] == "http"
    headers = [(b"set-cookie", f"sid={SET_COOKIE_SECRET}".encode()), (b"x-visible", b"shown-response")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def test_http_header_and_url_secrets_stay_out(
    receiver: OTLPReceiver,
    make_telemetry: Callable[..., hoptel.Telemetry],
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Authorization, Cookie, Set-Cookie, userinfo and query secrets stay out, even when allow-listed."""
    tel = make_telemetry("secrets-http", log=DEBUG_LOG)
    receiver.fail_with("unavailable", retry_after_s=0.0, times=1)  # the exporter logs a retry
    allow = ["authorization", "cookie", "set-cookie", "proxy-authorization", "x-visible"]
    app = hoptel.ASGIMiddleware(
        _set_cookie_app, telemetry=tel, record_request_headers=allow, record_response_headers=allow
    )
    transport = hoptel.HTTPTransport(telemetry=tel, record_request_headers=allow, record_response_headers=allow)
    with run_uvicorn(app) as base, httpx.Client(transport=transport, timeout=10) as client:
        host = base.removeprefix("http://")
        headers = {
            "Authorization": f"Bearer {HTTP_SECRET}",
            "Cookie": f"session={HTTP_COOKIE_SECRET}",
            "X-Visible": "shown-request",
        }
        assert client.get(f"{base}/private?token={QUERY_SECRET}&page=2", headers=headers).status_code == 200
        assert client.get(f"http://user:{USERINFO_SECRET}@{host}/basic").status_code == 200
    spans = receiver.wait_for_spans(4, timeout=WAIT_S)
    # The allow-list works, so the secrets' absence is not an accident of recording nothing at all.
    recorded = " ".join(_span_text(span) for span in spans)
    assert "shown-request" in recorded
    assert "shown-response" in recorded
    tel.shutdown()
    captured = capfd.readouterr()
    basic = base64.b64encode(f"user:{USERINFO_SECRET}".encode()).decode()
    secrets = [HTTP_SECRET, HTTP_COOKIE_SECRET, USERINFO_SECRET, basic, QUERY_SECRET, SET_COOKIE_SECRET]
    _assert_nowhere(secrets, tel, receiver, captured.out + captured.err)


def test_a_malformed_exporter_header_setting_does_not_echo_its_secret() -> None:
    """setup()'s error for a malformed OTEL_EXPORTER_OTLP_HEADERS names the problem without the token in it."""
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_HEADERS") as error:
        hoptel.setup(
            "secrets-config",
            environ={"OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer {OTLP_SECRET},broken"},
            traces_exporter="none",
            metrics_addr="off",
        )
    assert OTLP_SECRET not in str(error.value)
