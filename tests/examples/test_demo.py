"""The README's demo command, run as a subprocess: its traces, statuses, metrics, and that it leaves nothing behind.

The demo runs with ``--metrics-port-base 0`` (free metrics ports, so a busy 9464 on the test machine cannot
interfere) and ``--json-summary``, whose JSON lines are what the checks read; the human output is checked too.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ports

from hoptel.receiver import OTLPReceiver

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 90.0
SERVICES = ("gateway", "orders", "inventory", "pricing")
STARTED = re.compile(r"^started (\w+) \(pid (\d+)\)", re.MULTILINE)
GRPC_NOT_FOUND = 5
GRPC_DEADLINE_EXCEEDED = 4


def demo_env() -> dict[str, str]:
    """The test's environment without an external OTLP endpoint, so the demo uses its embedded receiver."""
    env = dict(os.environ)
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        env.pop(name, None)
    return env


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "examples.demo", *args]


def run_demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        demo_command(*args),
        cwd=REPO,
        env=env or demo_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )


def started_pids(output: str) -> dict[str, int]:
    """The services the demo reported starting: name -> pid."""
    return {name: int(pid) for name, pid in STARTED.findall(output)}


def running(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) demo service process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state != "Z" and b"examples.services" in cmdline


def assert_all_gone(pids: dict[str, int]) -> None:
    left = {name: pid for name, pid in pids.items() if running(pid)}
    assert not left, f"demo left these services running: {left}"


@dataclass(frozen=True)
class DemoRun:
    """One finished run of the demo."""

    result: subprocess.CompletedProcess[str]
    summary: list[dict[str, Any]]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [entry for entry in self.summary if entry["type"] == kind]

    def trace_for(self, sku: str) -> dict[str, Any]:
        (entry,) = [t for t in self.of_type("trace") if t["request"]["sku"] == sku]
        return entry


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo run once with a JSON summary; the tests below read its output."""
    log_dir = tmp_path_factory.mktemp("demo-logs")
    result = run_demo("--json-summary", "--metrics-port-base", "0", "--log-dir", str(log_dir))
    summary = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"type": ')]
    return DemoRun(result, summary)


def spans_by(trace: dict[str, Any], service: str, kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        span
        for span in trace["spans"]
        if span["service"] == service and span["kind"] == kind and (name is None or span["name"] == name)
    ]


def one_span(trace: dict[str, Any], service: str, kind: str, name: str | None = None) -> dict[str, Any]:
    found = spans_by(trace, service, kind, name)
    assert len(found) == 1, f"expected one {service} {kind} {name} span, got {found}"
    return found[0]


def test_demo_exits_zero_and_reports_success(demo: DemoRun) -> None:
    """A full run exits 0, says every check passed, and printed every request's trace."""
    assert demo.result.returncode == 0, demo.result.stderr[-3000:]
    (result,) = demo.of_type("result")
    assert result == {"type": "result", "ok": True, "problems": []}
    assert len(demo.of_type("trace")) == 4
    assert "all services stopped; demo finished" in demo.result.stdout


def test_successful_orders_cross_every_service_in_one_trace_with_parent_links(demo: DemoRun) -> None:
    """An order is one trace: gateway -> orders -> inventory (W3C) and -> pricing (B3), each span under its caller."""
    for sku in ("widget", "gadget"):
        trace = demo.trace_for(sku)
        assert trace["http_status"] == 200
        spans = trace["spans"]
        assert {span["service"] for span in spans} == set(SERVICES)
        assert len({span["span_id"] for span in spans}) == len(spans) == 9
        root = one_span(trace, "gateway", "SERVER")
        assert root["parent_span_id"] is None
        gateway_call = one_span(trace, "gateway", "CLIENT", "demo.Orders/PlaceOrder")
        assert gateway_call["parent_span_id"] == root["span_id"]
        orders = one_span(trace, "orders", "SERVER", "demo.Orders/PlaceOrder")
        assert orders["parent_span_id"] == gateway_call["span_id"]
        for method in ("demo.Inventory/Check", "demo.Inventory/Warehouses"):
            call = one_span(trace, "orders", "CLIENT", method)
            assert call["parent_span_id"] == orders["span_id"]
            assert one_span(trace, "inventory", "SERVER", method)["parent_span_id"] == call["span_id"]
        (price_call,) = [s for s in spans_by(trace, "orders", "CLIENT") if not s["name"].startswith("demo.")]
        assert price_call["parent_span_id"] == orders["span_id"]
        pricing = one_span(trace, "pricing", "SERVER")  # pricing extracts B3 only: this link is the B3 hop
        assert pricing["parent_span_id"] == price_call["span_id"]
        assert pricing["attributes"]["http.response.status_code"] == 200


def test_unknown_item_carries_not_found_from_inventory_to_the_gateway(demo: DemoRun) -> None:
    """The unknown item fails NOT_FOUND in inventory, on both gRPC hops, and 404 at the gateway."""
    trace = demo.trace_for("unobtainium")
    assert trace["http_status"] == 404
    assert one_span(trace, "gateway", "SERVER")["attributes"]["http.response.status_code"] == 404
    for service, kind in (("gateway", "CLIENT"), ("orders", "SERVER"), ("orders", "CLIENT"), ("inventory", "SERVER")):
        span = one_span(trace, service, kind)
        assert span["attributes"]["rpc.grpc.status_code"] == GRPC_NOT_FOUND, span
    assert one_span(trace, "gateway", "CLIENT")["status"] == "ERROR"
    assert not spans_by(trace, "pricing", "SERVER")


def test_slow_warehouse_ends_deadline_exceeded_and_504(demo: DemoRun) -> None:
    """The slow stream runs out of orders' budget: DEADLINE_EXCEEDED up to the gateway, which answers 504."""
    trace = demo.trace_for("anvil")
    assert trace["http_status"] == 504
    assert one_span(trace, "gateway", "SERVER")["attributes"]["http.response.status_code"] == 504
    stream = one_span(trace, "orders", "CLIENT", "demo.Inventory/Warehouses")
    assert stream["attributes"]["rpc.grpc.status_code"] == GRPC_DEADLINE_EXCEEDED
    assert stream["status"] == "ERROR"
    for service, kind in (("gateway", "CLIENT"), ("orders", "SERVER")):
        span = one_span(trace, service, kind, "demo.Orders/PlaceOrder")
        assert span["attributes"]["rpc.grpc.status_code"] == GRPC_DEADLINE_EXCEEDED, span
        assert span["status"] == "ERROR"


def test_trees_and_correlated_logs_are_printed(demo: DemoRun) -> None:
    """Each trace is printed as a tree under its request, with the JSON log lines carrying its trace id."""
    out = demo.result.stdout
    for trace in demo.of_type("trace"):
        assert f"trace {trace['trace_id']}  {len(trace['spans'])} spans" in out
    assert re.search(r"^\s+gateway  POST /orders  \[SERVER\]", out, re.MULTILINE)
    assert re.search(r"^\s+pricing  GET /prices/\{sku\}  \[SERVER\]", out, re.MULTILINE)
    not_found_logs = demo.trace_for("unobtainium")["logs"]
    assert any(line.startswith("inventory  WARNING  unknown sku") for line in not_found_logs), not_found_logs


def test_metrics_lines_from_every_service(demo: DemoRun) -> None:
    """A few samples are scraped from each service's own metrics endpoint, statuses in Go's spelling."""
    metrics = {entry["service"]: entry["lines"] for entry in demo.of_type("metrics")}
    assert set(metrics) == set(SERVICES)
    assert all(metrics.values()), metrics
    assert any('grpc_code="NotFound"' in line for line in metrics["inventory"]), metrics["inventory"]
    assert any('grpc_code="DeadlineExceeded"' in line for line in metrics["gateway"]), metrics["gateway"]
    assert any(line.startswith("http_server_request_duration_seconds_count{") for line in metrics["pricing"])
    for name, lines in metrics.items():
        assert all(f"  {line}" in demo.result.stdout for line in lines), name


def test_histograms_pushed_over_otlp_from_every_service(demo: DemoRun) -> None:
    """Each service also pushes its latency histograms to the embedded receiver; the counts match the scrape."""
    pushed = {entry["service"]: entry["lines"] for entry in demo.of_type("otlp_metrics")}
    assert set(pushed) == set(SERVICES)
    pricing = [line for line in pushed["pricing"] if line.startswith("http.server.request.duration{")]
    assert len(pricing) == 1, pushed["pricing"]
    scraped = {entry["service"]: entry["lines"] for entry in demo.of_type("metrics")}["pricing"]
    (count_line,) = [line for line in scraped if line.startswith("http_server_request_duration_seconds_count{")]
    assert f"  count={int(float(count_line.rpartition(' ')[2]))}  p50=" in pricing[0]
    assert any(line.startswith("rpc.server.call.duration{") for line in pushed["inventory"]), pushed["inventory"]


def test_no_service_is_left_running(demo: DemoRun) -> None:
    """Every service the demo started (it prints their pids) is gone once it exits."""
    pids = started_pids(demo.result.stdout)
    assert set(pids) == set(SERVICES)
    (processes,) = demo.of_type("processes")
    assert processes["pids"] == pids
    assert_all_gone(pids)


def test_with_an_otlp_endpoint_set_the_services_export_there(receiver: OTLPReceiver) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT set: no embedded receiver, and every request's trace arrives at that endpoint."""
    env = {**demo_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint}
    env.pop("OTEL_EXPORTER_OTLP_PROTOCOL", None)  # the default, http/protobuf
    result = run_demo("--metrics-port-base", "0", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"spans go to {receiver.http_endpoint} over http/protobuf (no embedded receiver" in result.stdout
    trace_ids = re.findall(r"^   trace ([0-9a-f]{32}): see ", result.stdout, re.MULTILINE)
    assert len(trace_ids) == 4
    for trace_id in trace_ids:
        spans = receiver.wait_for_trace(trace_id, 5)
        assert {span.service_name for span in spans} >= {"gateway", "orders", "inventory"}
    assert {span.protocol for span in receiver.spans()} == {"http"}
    assert_all_gone(started_pids(result.stdout))


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another process (this test) listens on."""
    with ports.busy_port() as port:
        yield port


def test_taken_metrics_port_stops_the_demo_before_anything_starts(busy_port: int) -> None:
    """A metrics port in use ends the demo with a message naming it, before any service is started."""
    result = run_demo("--metrics-port-base", str(busy_port))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"127.0.0.1:{busy_port} (gateway metrics)" in result.stderr
    assert "nothing was started" in result.stderr
    assert not started_pids(result.stdout)


def test_service_that_dies_is_reported_and_the_others_are_stopped(busy_port: int) -> None:
    """A gateway that cannot bind its port exits; the demo says so with its output and stops the rest."""
    result = run_demo("--metrics-port-base", "0", "--gateway-port", str(busy_port))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "gateway exited with status 1 before the demo finished starting" in result.stderr, result.stderr
    assert f"gateway: cannot listen on 127.0.0.1:{busy_port}" in result.stderr
    pids = started_pids(result.stdout)
    assert set(pids) == set(SERVICES)
    assert_all_gone(pids)


def read_until(lines: queue.Queue[str | None], pattern: str, deadline: float, output: list[str]) -> re.Match[str]:
    """Take output lines until one matches ``pattern``; fail at ``deadline`` or when the output ends."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"the demo printed no line matching {pattern!r} in time; it printed:\n{''.join(output)}")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail(f"the demo ended before printing {pattern!r}; it printed:\n{''.join(output)}")
        match = re.search(pattern, line)
        if match:
            return match


def test_keep_running_serves_prints_new_traces_and_stops_on_sigterm(tmp_path: Path) -> None:
    """With --keep-running the gateway stays up, a new request's trace is printed, and SIGTERM stops it all."""
    process = subprocess.Popen(
        demo_command("--keep-running", "--metrics-port-base", "0", "--log-dir", str(tmp_path)),
        cwd=REPO,
        env=demo_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)  # end of output

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        gateway = read_until(lines, r"the gateway listens on (http://\S+)", deadline, output).group(1)
        read_until(lines, r"The services keep running", deadline, output)
        response = httpx.post(f"{gateway}/orders", json={"sku": "gadget", "quantity": 3}, timeout=10.0)
        assert response.status_code == 200
        read_until(lines, rf"^trace {response.headers['x-trace-id']}  9 spans", deadline, output)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
    pids = started_pids("".join(output))
    assert set(pids) == set(SERVICES)
    assert_all_gone(pids)


def test_gateway_with_two_uvicorn_workers_serves_merged_metrics_at_one_address(tmp_path: Path) -> None:
    """--gateway-workers 2: uvicorn's workers answer every order; the one metrics address counts all four.

    It reports two live worker processes, and the demo exits with nothing left running.
    """
    result = run_demo(
        "--json-summary", "--metrics-port-base", "0", "--gateway-workers", "2", "--log-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"type": ')]
    run = DemoRun(result, summary)
    assert run.of_type("result") == [{"type": "result", "ok": True, "problems": []}]
    traces = run.of_type("trace")
    assert len(traces) == 4
    gateway_pid = started_pids(result.stdout)["gateway"]
    served_by = {int(trace["served_by"]) for trace in traces}
    assert gateway_pid not in served_by, "the uvicorn supervisor itself answered: no workers?"

    (gateway_metrics,) = [entry["lines"] for entry in run.of_type("metrics") if entry["service"] == "gateway"]
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in gateway_metrics
        if line.startswith("http_server_request_duration_seconds_count{")
    ]
    assert sum(counts) == 4.0, gateway_metrics
    assert 'hoptel_worker_processes{state="live"} 2.0' in gateway_metrics, gateway_metrics
    assert_all_gone(started_pids(result.stdout))
