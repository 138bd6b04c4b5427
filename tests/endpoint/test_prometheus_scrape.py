"""End to end: a real Prometheus scrapes a hoptel process every second; counts, quantiles and exemplars.

The hoptel process (scrape_app.py) makes a known number of gRPC calls and HTTP requests through hoptel's
instrumentation, exports its spans over OTLP/gRPC to an OTLPReceiver in this test process, and serves its
metrics on an ephemeral port. The Debian ``prometheus`` server, with exemplar storage on, scrapes it; the tests
query Prometheus's HTTP API only. The exemplar test closes the loop from a latency bucket to a trace.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from hoptel.receiver import OTLPReceiver

pytestmark = pytest.mark.prometheus

GRPC_CALLS = 7
HTTP_REQUESTS = 5
GRPC_SELECTOR = 'job="hoptel",grpc_type="unary",grpc_service="hoptel.test.Echo",grpc_method="Say"'
HTTP_SELECTOR = 'job="hoptel",http_request_method="GET",http_response_status_code="200"'
APP = Path(__file__).with_name("scrape_app.py")
STARTUP_TIMEOUT_S = 60.0  # bounds: the app's calls, Prometheus becoming ready, the first scrapes
QUERY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.25
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Scrape:
    """A running Prometheus scraping a running hoptel process, and where that process's spans went."""

    prometheus: Any  # conftest.PrometheusServer
    metrics_url: str
    receiver: OTLPReceiver
    started_at: float


def _start_app(receiver: OTLPReceiver, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOPTEL_"))}
    env.update(
        HOPTEL_METRICS_ADDR="127.0.0.1:0",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    command = [sys.executable, str(APP), "--grpc-calls", str(GRPC_CALLS), "--http-requests", str(HTTP_REQUESTS)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)


def _read_metrics_url(app: subprocess.Popen[bytes], logs: Callable[[], str]) -> str:
    """The metrics URL from the app's JSON line on stdout, read on a thread so the wait is bounded."""
    lines: queue.Queue[bytes] = queue.Queue()
    assert app.stdout is not None
    stdout = app.stdout

    def pump() -> None:
        for line in iter(stdout.readline, b""):
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=POLL_S)
        except queue.Empty:
            if app.poll() is not None:
                pytest.fail(f"the hoptel app exited with {app.returncode}\n{logs()}")
            continue
        try:
            return str(json.loads(line)["metrics_url"])
        except (ValueError, KeyError, TypeError):
            continue
    pytest.fail(f"the hoptel app printed no metrics URL within {STARTUP_TIMEOUT_S:.0f}s\n{logs()}")


def _prometheus_config(metrics_url: str) -> str:
    target = re.sub(r"^https?://([^/]+)/.*$", r"\1", metrics_url)
    return (
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: hoptel\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f'      - targets: ["{target}"]\n'
    )


@pytest.fixture(scope="module")
def scrape(prometheus: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrape]:
    """Start the receiver, the hoptel app and Prometheus; wait until Prometheus has scraped the app."""
    directory = tmp_path_factory.mktemp("prometheus")
    app_log_path = directory / "app.log"

    def app_logs() -> str:
        lines = app_log_path.read_text(errors="replace").splitlines()[-40:] if app_log_path.exists() else []
        return "--- hoptel app stderr ---\n" + "\n".join(lines)

    started_at = time.time()
    with OTLPReceiver() as receiver, app_log_path.open("wb") as app_log:
        app = _start_app(receiver, app_log)
        try:
            metrics_url = _read_metrics_url(app, app_logs)
            with prometheus(directory, _prometheus_config(metrics_url), app_logs) as server:
                server.wait_for_scrapes("hoptel")
                yield Scrape(server, metrics_url, receiver, started_at)
        finally:
            if app.stdin is not None:
                app.stdin.close()  # the app shuts down cleanly on EOF
            with contextlib.suppress(subprocess.TimeoutExpired):
                app.wait(STOP_TIMEOUT_S)
            if app.poll() is None:
                app.kill()
                app.wait(STOP_TIMEOUT_S)
            if app.stdout is not None:
                app.stdout.close()


def test_grpc_server_handled_count_is_exact(scrape: Scrape) -> None:
    """Prometheus reports exactly the number of gRPC calls made in grpc_server_handled_total (code OK)."""
    value = scrape.prometheus.value(f'sum(grpc_server_handled_total{{{GRPC_SELECTOR},grpc_code="OK"}})')
    assert value == GRPC_CALLS


def test_grpc_client_handled_count_is_exact(scrape: Scrape) -> None:
    """The client side of the same calls is counted exactly too, in grpc_client_handled_total."""
    value = scrape.prometheus.value(f'sum(grpc_client_handled_total{{{GRPC_SELECTOR},grpc_code="OK"}})')
    assert value == GRPC_CALLS


def test_http_server_request_count_is_exact(scrape: Scrape) -> None:
    """Prometheus reports exactly the number of HTTP requests in http_server_request_duration_seconds_count."""
    value = scrape.prometheus.value(f"sum(http_server_request_duration_seconds_count{{{HTTP_SELECTOR}}})")
    assert value == HTTP_REQUESTS


def test_http_client_request_count_is_exact(scrape: Scrape) -> None:
    """The httpx side of the same requests is counted exactly in http_client_request_duration_seconds_count."""
    value = scrape.prometheus.value(f"sum(http_client_request_duration_seconds_count{{{HTTP_SELECTOR}}})")
    assert value == HTTP_REQUESTS


@pytest.mark.parametrize("histogram", ["grpc_server_handling_seconds", "http_server_request_duration_seconds"])
def test_histogram_quantile_answers_a_number(scrape: Scrape, histogram: str) -> None:
    """histogram_quantile over the scraped buckets answers a finite, positive latency in seconds."""
    value = scrape.prometheus.value(f'histogram_quantile(0.9, sum by (le) ({histogram}_bucket{{job="hoptel"}}))')
    assert math.isfinite(value)
    assert 0 < value <= 10.0


@pytest.mark.parametrize(
    ("histogram", "server_span"),
    [("grpc_server_handling_seconds", "hoptel.test.Echo/Say"), ("http_server_request_duration_seconds", "GET")],
)
def test_exemplar_trace_ids_are_traces_the_receiver_got(scrape: Scrape, histogram: str, server_span: str) -> None:
    """Every exemplar Prometheus stored for the histogram names a trace that reached the OTLPReceiver."""
    since = scrape.started_at - 60
    trace_ids = scrape.prometheus.exemplar_trace_ids(f'{histogram}_bucket{{job="hoptel"}}', since)
    assert all(TRACE_ID.match(trace_id) for trace_id in trace_ids)
    for trace_id in set(trace_ids):
        # The client span and the server span of one hop; the server span is the one the histogram timed.
        spans = scrape.receiver.wait_for_trace(trace_id, 2, timeout=QUERY_TIMEOUT_S)
        assert any(
            span.kind == "SERVER"
            and span.service_name == "scrape-app"
            and (span.name == server_span or span.name.startswith(f"{server_span} "))
            for span in spans
        ), spans
