"""``python -m hoptel.receiver`` in a subprocess: endpoint line, trace trees, metric series, clean exit on signals."""

from __future__ import annotations

import ctypes
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind
from support.ports import busy_port

READY = re.compile(r"^hoptel\.receiver grpc=(http://127\.0\.0\.1:\d+) http=(http://127\.0\.0\.1:\d+)$")
WAIT_S = 15.0  # generous: a subprocess start imports grpc and the OTel protos
_SYS_TGKILL = 234  # x86-64 Linux


class Cli:
    """A running ``python -m hoptel.receiver`` whose stdout lines are collected on a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hoptel.receiver", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output

    def line(self) -> str:
        """The next stdout line; fails the test if none comes in time or the output ended."""
        try:
            line = self._lines.get(timeout=WAIT_S)
        except queue.Empty:
            pytest.fail(f"no output from the receiver CLI within {WAIT_S} s")
        if line is None:
            pytest.fail(f"the receiver CLI ended its output; stderr: {self.stderr()}")
        return line

    def block(self) -> list[str]:
        """The lines up to the next blank line (one printed trace)."""
        lines: list[str] = []
        for _ in range(1000):  # bound: no trace in these tests is anywhere near this long
            line = self.line()
            if not line:
                return lines
            lines.append(line)
        pytest.fail("unterminated trace block")

    def rest(self) -> list[str]:
        """Every remaining stdout line until the output ends."""
        lines: list[str] = []
        for _ in range(1000):
            try:
                line = self._lines.get(timeout=WAIT_S)
            except queue.Empty:
                pytest.fail("the receiver CLI did not end its output")
            if line is None:
                return lines
            lines.append(line)
        pytest.fail("too much output")

    def stderr(self) -> str:
        """The stderr text once the process has ended (empty while it runs)."""
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()


@pytest.fixture
def start_cli() -> Iterator[Callable[..., Cli]]:
    """Start receiver CLIs; any still running after the test is killed."""
    started: list[Cli] = []

    def factory(*args: str) -> Cli:
        cli = Cli(*args)
        started.append(cli)
        return cli

    yield factory
    for cli in started:
        if cli.proc.poll() is None:
            cli.proc.kill()
        cli.proc.wait(WAIT_S)
        for stream in (cli.proc.stdout, cli.proc.stderr):
            if stream is not None:
                stream.close()


def _endpoints(cli: Cli) -> tuple[str, str]:
    first = cli.line()
    match = READY.match(first)
    assert match, f"unexpected first line: {first!r}"
    return match.group(1), match.group(2)


def _export_trace(exporter: SpanExporter) -> str:
    """Export a SERVER span with one INTERNAL child; return the trace id as hex."""
    provider = TracerProvider(resource=Resource.create({"service.name": "cli-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        tracer = provider.get_tracer("tests.cli")
        with tracer.start_as_current_span("GET /items", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.response.status_code", 200)
            with tracer.start_as_current_span("load"):
                pass
    finally:
        provider.shutdown()
    return trace.format_trace_id(root.get_span_context().trace_id)


def test_cli_prints_endpoints_then_a_tree_and_exits_on_sigterm(start_cli: Callable[..., Cli]) -> None:
    """The CLI prints a parseable endpoint line, a tree for a quiet trace, and exits 0 on SIGTERM."""
    cli = start_cli("--grpc-port", "0", "--http-port", "0", "--idle", "0.2")
    _, http_endpoint = _endpoints(cli)

    trace_id = _export_trace(HttpSpanExporter(endpoint=f"{http_endpoint}/v1/traces", timeout=5))
    tree = cli.block()

    assert tree[0] == f"trace {trace_id}  2 spans"
    assert re.fullmatch(
        r"  cli-test  GET /items  \[SERVER\]  \d+\.\d\d ms  UNSET  http\.response\.status_code=200", tree[1]
    )
    assert re.fullmatch(r"    cli-test  load  \[INTERNAL\]  \d+\.\d\d ms  UNSET", tree[2])
    assert len(tree) == 3
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.proc.wait(WAIT_S) == 0
    assert cli.rest() == []
    assert "stopped" in cli.stderr()


def test_cli_prints_pending_traces_when_interrupted(start_cli: Callable[..., Cli]) -> None:
    """On SIGINT the CLI prints the traces still waiting out --idle, then exits 0."""
    cli = start_cli("--grpc-port", "0", "--http-port", "0", "--idle", "600")
    grpc_endpoint, _ = _endpoints(cli)
    trace_id = _export_trace(GrpcSpanExporter(endpoint=grpc_endpoint, insecure=True, timeout=5))

    cli.proc.send_signal(signal.SIGINT)

    assert cli.proc.wait(WAIT_S) == 0
    output = cli.rest()
    assert output[0] == f"trace {trace_id}  2 spans"
    assert "GET /items" in output[1]


def _signal_a_thread_other_than_main(pid: int, signum: int) -> None:
    """Deliver ``signum`` to one of ``pid``'s non-main threads (``tgkill``), as the kernel may do with kill()."""
    libc = ctypes.CDLL(None, use_errno=True)
    others = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
    assert others, "the receiver runs server threads"
    if libc.syscall(_SYS_TGKILL, pid, others[0], signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")


@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"), reason="tgkill number: x86-64")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_stops_when_a_server_thread_receives_the_signal(start_cli: Callable[..., Cli], signum: int) -> None:
    """A signal the kernel hands to a grpc or HTTP thread still stops the CLI promptly, pending traces printed.

    Python runs signal handlers on the main thread only when it next wakes up; a main thread blocked until the
    next trace is due (here: 600 s) would never notice.
    """
    cli = start_cli("--grpc-port", "0", "--http-port", "0", "--idle", "600")
    grpc_endpoint, _ = _endpoints(cli)
    trace_id = _export_trace(GrpcSpanExporter(endpoint=grpc_endpoint, insecure=True, timeout=5))

    _signal_a_thread_other_than_main(cli.proc.pid, signum)

    assert cli.proc.wait(WAIT_S) == 0
    assert cli.rest()[0] == f"trace {trace_id}  2 spans"


def test_cli_fails_cleanly_on_a_busy_port(start_cli: Callable[..., Cli]) -> None:
    """A port already taken makes the CLI exit 1 with the reason on stderr."""
    with busy_port() as port:
        cli = start_cli("--grpc-port", "0", "--http-port", str(port))

        assert cli.proc.wait(WAIT_S) == 1
    assert cli.rest() == []
    assert "hoptel.receiver:" in cli.stderr()


def test_cli_rejects_a_bad_idle(start_cli: Callable[..., Cli]) -> None:
    """A negative --idle is a usage error (exit 2)."""
    cli = start_cli("--idle", "-1")

    assert cli.proc.wait(WAIT_S) == 2
    assert "--idle" in cli.stderr()


def _export_histogram(exporter: MetricExporter, values: Sequence[float]) -> None:
    """Record ``values`` in an SDK histogram ``demo.duration`` (unit s, buckets 1/10/100 ms) and export it once."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    view = View(instrument_name="demo.duration", aggregation=ExplicitBucketHistogramAggregation((0.001, 0.01, 0.1)))
    provider = MeterProvider(metric_readers=[reader], views=[view])
    try:
        histogram = provider.get_meter("tests.cli").create_histogram("demo.duration", unit="s")
        for value in values:
            histogram.record(value, {"route": "/items"})
        provider.force_flush(10_000)
    finally:
        provider.shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_cli_prints_received_metrics_as_series(start_cli: Callable[..., Cli], protocol: str) -> None:
    """Metrics received over either protocol are printed as one line per series with count, p50 and p99."""
    cli = start_cli("--grpc-port", "0", "--http-port", "0", "--idle", "0.2")
    grpc_endpoint, http_endpoint = _endpoints(cli)
    exporter: MetricExporter = (
        GrpcMetricExporter(endpoint=grpc_endpoint, insecure=True, timeout=5)
        if protocol == "grpc"
        else HttpMetricExporter(endpoint=f"{http_endpoint}/v1/metrics", timeout=5)
    )
    _export_histogram(exporter, [0.005] * 4)

    block = cli.block()

    assert block == ["metrics (1 series):", "  demo.duration{route=/items}  count=4  p50=5.50ms  p99=9.91ms"]
    cli.proc.send_signal(signal.SIGTERM)
    assert cli.proc.wait(WAIT_S) == 0
