"""The metrics endpoint over plain HTTP: methods, paths, formats, errors, concurrency and lifecycle."""

from __future__ import annotations

import gzip
import ipaddress
import logging
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry
from support.ports import busy_port

from hoptel.endpoint import MetricsEndpoint

TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text"
# What Prometheus 2.x sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
WAIT_S = 10.0

Fetch = Callable[..., Any]  # conftest.fetch: (url, method=, path=, headers=, context=) -> Response


def test_get_serves_the_registry_as_prometheus_text(endpoint: MetricsEndpoint, fetch: Fetch) -> None:
    """GET /metrics answers 200 with the registry's samples in the text format 0.0.4."""
    response = fetch(endpoint.url)
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert int(response.headers["content-length"]) == len(response.body)
    text = response.body.decode()
    assert 'demo_calls_total{method="Get"} 3.0' in text
    assert 'demo_latency_seconds_bucket{le="0.0005",method="Get"} 1.0' in text
    assert 'demo_latency_seconds_count{method="Get"} 2.0' in text


def test_head_has_the_get_headers_and_no_body(endpoint: MetricsEndpoint, fetch: Fetch) -> None:
    """HEAD /metrics answers 200 with GET's content type and length but without a body."""
    get = fetch(endpoint.url)
    head = fetch(endpoint.url, method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize("path", ["/", "/metrics/", "/metricsx", "/favicon.ico", "/api/v1/metrics"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_other_paths_are_not_found(endpoint: MetricsEndpoint, fetch: Fetch, method: str, path: str) -> None:
    """Any path other than /metrics is 404, for GET and HEAD alike."""
    response = fetch(endpoint.url, method=method, path=path)
    assert response.status == 404
    assert (response.body == b"") == (method == "HEAD")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"])
def test_other_methods_are_not_allowed(endpoint: MetricsEndpoint, fetch: Fetch, method: str) -> None:
    """Methods other than GET and HEAD are 405 with an Allow header naming GET and HEAD."""
    response = fetch(endpoint.url, method=method)
    assert response.status == 405
    assert response.headers["allow"] == "GET, HEAD"


def test_query_string_is_ignored_for_routing(endpoint: MetricsEndpoint, fetch: Fetch) -> None:
    """/metrics?x=1 is still the metrics path."""
    assert fetch(endpoint.url, path="/metrics?x=1").status == 200


def test_name_filter_restricts_the_families(endpoint: MetricsEndpoint, fetch: Fetch) -> None:
    """name[]=demo_calls_total serves that family only, like prometheus_client's own handler."""
    text = fetch(endpoint.url, path="/metrics?name[]=demo_calls_total").body.decode()
    assert "demo_calls_total" in text
    assert "demo_latency_seconds" not in text


def test_text_format_carries_no_exemplars(endpoint: MetricsEndpoint, fetch: Fetch, trace_id: str) -> None:
    """Without an OpenMetrics Accept header the trace_id exemplar is not in the body."""
    response = fetch(endpoint.url, headers={"Accept": "text/plain"})
    assert response.headers["content-type"] == TEXT_0_0_4
    assert trace_id not in response.body.decode()


@pytest.mark.parametrize("accept", [OPENMETRICS, "application/openmetrics-text; version=1.0.0", PROMETHEUS_ACCEPT])
def test_openmetrics_carries_the_exemplar(endpoint: MetricsEndpoint, fetch: Fetch, trace_id: str, accept: str) -> None:
    """Asking for application/openmetrics-text serves OpenMetrics 1.0 with the trace_id exemplar."""
    response = fetch(endpoint.url, headers={"Accept": accept})
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    text = response.body.decode()
    exemplar = f'demo_latency_seconds_bucket{{le="0.0005",method="Get"}} 1.0 # {{trace_id="{trace_id}"}} 0.0003 '
    assert exemplar in text
    assert text.endswith("# EOF\n")


def test_gzip_when_accepted(endpoint: MetricsEndpoint, fetch: Fetch) -> None:
    """Accept-Encoding: gzip gets a gzipped body that decompresses to the plain one."""
    plain = fetch(endpoint.url)
    zipped = fetch(endpoint.url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) == len(zipped.body)
    assert gzip.decompress(zipped.body) == plain.body
    assert "content-encoding" not in plain.headers


class _FailingOnce:
    """A collector that raises on its first collect() and then reports one counter."""

    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> Iterable[Metric]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("collector exploded")
        return [CounterMetricFamily("recovered_total", "Recovered.", value=1)]


def test_failing_collector_answers_500_and_server_survives(fetch: Fetch, caplog: pytest.LogCaptureFixture) -> None:
    """A collector that raises gets a 500 (logged on hoptel.endpoint); the next scrape succeeds."""
    registry = CollectorRegistry()
    registry.register(_FailingOnce())
    with MetricsEndpoint.start(registry, port=0) as endpoint, caplog.at_level(logging.WARNING, "hoptel.endpoint"):
        failed = fetch(endpoint.url)
        assert failed.status == 500
        assert b"exploded" not in failed.body  # no internals leak to the scraper
        assert any(r.exc_info and "collector exploded" in str(r.exc_info[1]) for r in caplog.records)
        recovered = fetch(endpoint.url)
    assert recovered.status == 200
    assert b"recovered_total 1.0" in recovered.body


def test_no_access_log_on_stderr(endpoint: MetricsEndpoint, fetch: Fetch, capfd: pytest.CaptureFixture[str]) -> None:
    """Serving 200, 404, 405 and a malformed request writes nothing to stdout or stderr."""
    capfd.readouterr()
    fetch(endpoint.url)
    fetch(endpoint.url, path="/nope")
    fetch(endpoint.url, method="POST")
    with socket.create_connection(_address(endpoint), timeout=WAIT_S) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        assert b"400" in raw.recv(4096)
    assert capfd.readouterr() == ("", "")


class _Gate:
    """A collector that blocks its first collect() until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Iterable[Metric]:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(WAIT_S)
        return [CounterMetricFamily("gate_total", "Gate.", value=1)]


def test_requests_are_served_concurrently(fetch: Fetch) -> None:
    """While one scrape is stuck in a collector, another request is still answered."""
    gate = _Gate()
    registry = CollectorRegistry()
    registry.register(gate)
    results: list[int] = []
    with MetricsEndpoint.start(registry, port=0) as endpoint:
        stuck = threading.Thread(target=lambda: results.append(fetch(endpoint.url).status), daemon=True)
        stuck.start()
        try:
            assert gate.entered.wait(WAIT_S)
            assert fetch(endpoint.url).status == 200  # answered while the first one is blocked
            assert results == []
        finally:
            gate.release.set()
            stuck.join(WAIT_S)
    assert results == [200]


def test_port_zero_resolves_to_the_bound_port(registry: CollectorRegistry, fetch: Fetch) -> None:
    """Port 0 binds a free port; url and port report it."""
    with MetricsEndpoint.start(registry, host="127.0.0.1", port=0) as endpoint:
        assert endpoint.port != 0
        assert endpoint.bound_address == ("127.0.0.1", endpoint.port)
        assert endpoint.url == f"http://127.0.0.1:{endpoint.port}/metrics"
        assert fetch(endpoint.url).status == 200


def test_port_in_use_names_the_variable_and_address(registry: CollectorRegistry) -> None:
    """Binding a port another socket listens on is a ValueError naming HOPTEL_METRICS_ADDR and the address."""
    with busy_port() as port, pytest.raises(ValueError, match="address already in use") as caught:
        MetricsEndpoint.start(registry, host="127.0.0.1", port=port)
    assert str(caught.value) == f"HOPTEL_METRICS_ADDR='127.0.0.1:{port}': address already in use"


def test_port_in_use_by_another_endpoint(endpoint: MetricsEndpoint, registry: CollectorRegistry) -> None:
    """A second endpoint on the first one's port fails with the address in the message."""
    with pytest.raises(ValueError, match=rf"HOPTEL_METRICS_ADDR='127\.0\.0\.1:{endpoint.port}'"):
        MetricsEndpoint.start(registry, host="127.0.0.1", port=endpoint.port)


def test_address_not_on_this_machine_is_a_clear_error(registry: CollectorRegistry) -> None:
    """A host that is no address of this machine is a ValueError naming HOPTEL_METRICS_ADDR."""
    with pytest.raises(ValueError, match=r"^HOPTEL_METRICS_ADDR='203\.0\.113\.7:0': cannot bind"):
        MetricsEndpoint.start(registry, host="203.0.113.7", port=0)


def test_ipv6_loopback(registry: CollectorRegistry, fetch: Fetch) -> None:
    """An IPv6 host is served, with the address bracketed in the URL."""
    if not _can_bind("::1"):
        pytest.skip("no IPv6 loopback on this machine")
    with MetricsEndpoint.start(registry, host="::1", port=0) as endpoint:
        assert endpoint.url == f"http://[::1]:{endpoint.port}/metrics"
        assert endpoint.bound_address == ("::1", endpoint.port)
        assert fetch(endpoint.url).status == 200


def test_close_stops_serving_and_is_idempotent(registry: CollectorRegistry, fetch: Fetch) -> None:
    """After close() the port refuses connections and the thread is gone; close() again is a no-op."""
    before = {t.name for t in threading.enumerate()}
    endpoint = MetricsEndpoint.start(registry, port=0)
    thread_name = f"hoptel-metrics-{endpoint.port}"
    assert thread_name in {t.name for t in threading.enumerate()} - before
    assert fetch(endpoint.url).status == 200
    endpoint.close()
    endpoint.close()
    assert endpoint.closed
    assert thread_name not in {t.name for t in threading.enumerate()}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(_address(endpoint), timeout=WAIT_S).close()


def test_server_thread_is_a_daemon(endpoint: MetricsEndpoint) -> None:
    """The serving thread never keeps the process alive."""
    (thread,) = [t for t in threading.enumerate() if t.name == f"hoptel-metrics-{endpoint.port}"]
    assert thread.daemon


def test_default_host_is_loopback(registry: CollectorRegistry, fetch: Fetch) -> None:
    """Without a host the listening socket is bound to 127.0.0.1, not to all interfaces."""
    with MetricsEndpoint.start(registry, port=0) as endpoint:
        assert endpoint.bound_address == ("127.0.0.1", endpoint.port)
        assert endpoint.url == f"http://127.0.0.1:{endpoint.port}/metrics"
        assert fetch(endpoint.url).status == 200


def test_default_host_is_not_reachable_from_other_addresses(registry: CollectorRegistry) -> None:
    """The default endpoint refuses connections to this machine's non-loopback address."""
    outside = _non_loopback_ipv4()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with MetricsEndpoint.start(registry, port=0) as endpoint, pytest.raises(ConnectionRefusedError):
        socket.create_connection((outside, endpoint.port), timeout=WAIT_S).close()


def _non_loopback_ipv4() -> str | None:
    """An IPv4 address of this machine outside 127.0.0.0/8, from `ip -4 addr` or the routing table."""
    candidates: list[str] = []
    ip = shutil.which("ip")
    if ip is not None:
        listing = subprocess.run(
            [ip, "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=WAIT_S, check=False
        ).stdout
        candidates += re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", listing)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it only picks the outgoing address
            candidates.append(probe.getsockname()[0])
        except OSError:
            pass
    for address in candidates:
        if not ipaddress.ip_address(address).is_loopback and address != "0.0.0.0":
            return address
    return None


def _address(endpoint: MetricsEndpoint) -> tuple[str, int]:
    return endpoint.bound_address


def _can_bind(host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True
