"""``python -m examples.demo``: four services, one trace across gRPC and HTTP hops, printed as a tree.

It starts an embedded ``OTLPReceiver`` (unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: then the services export
there), starts inventory, pricing, orders and the gateway as child processes, sends a few orders through the
gateway (one for an unknown item, one that runs out of time), prints each request's trace with the log lines
that carry its trace id, a few lines from each service's metrics endpoint, and where to look next. Then it stops
everything it started and exits 0; 1 when something went wrong (the message says what), 130 on Ctrl-C.

``--keep-running`` leaves the services up for exploring (new traces are printed as they finish) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import httpx

from examples import report
from examples.scenarios import ALL_SERVICES, Outcome, drive
from examples.supervisor import DemoError, Ready, Supervisor, free_port, taken_ports
from hoptel.receiver import OTLPReceiver, ReceivedSpan, format_metrics, format_trace

__all__ = ["PROPAGATORS", "TraceTail", "main", "parse_args", "service_env"]

HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9464
"""gateway 9464, orders 9465, inventory 9466, pricing 9467: what examples/prometheus.yml scrapes."""

PROPAGATORS: dict[str, str] = {
    "gateway": "tracecontext,baggage",
    "orders": "tracecontext,baggage,b3",  # extracts the gateway's W3C headers, injects W3C and B3 downstream
    "inventory": "tracecontext,baggage",
    "pricing": "b3",  # reads only the single b3 header
}
"""``OTEL_PROPAGATORS`` of each service."""

_BSP_SCHEDULE_DELAY_MS = "100"  # export spans within 0.1 s, so traces are complete right after the requests
_TRACE_WAIT_S = 15.0
_METRIC_EXPORT_INTERVAL_MS = "1000"  # with the embedded receiver, the histograms are pushed every second too
_EXPORT_WAIT_S = 10.0
_IDLE_S = 2.0  # --keep-running prints a trace once no span of it arrived for this long
_TICK_S = 0.25


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The demo's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo",
        description="Run four instrumented services, send requests through them, print the traces and metrics.",
    )
    parser.add_argument("--keep-running", action="store_true", help="leave the services up until Ctrl-C")
    parser.add_argument(
        "--json-summary", action="store_true", help="also print one JSON object per line: traces, metrics, result"
    )
    parser.add_argument("--gateway-port", type=int, default=0, help="the gateway's HTTP port (default: a free one)")
    parser.add_argument(
        "--metrics-port-base",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="metrics ports are BASE..BASE+3 for gateway, orders, inventory, pricing; 0 = free ports "
        "(default: %(default)s, as in examples/prometheus.yml)",
    )
    parser.add_argument(
        "--gateway-workers",
        type=int,
        default=1,
        help="run the gateway as `uvicorn examples.services.gateway_app:app --workers N` (default: 1, one process)",
    )
    parser.add_argument("--log-dir", type=Path, help="where the services' logs go (default: a new temporary directory)")
    parser.add_argument(
        "--startup-timeout", type=float, default=30.0, help="seconds each service gets to become ready (default: 30)"
    )
    return parser.parse_args(argv)


def metrics_ports(base: int) -> dict[str, int]:
    """Each service's metrics port: ``base + i`` in ``ALL_SERVICES`` order, or all 0 (free ports) for base 0."""
    return {name: (base + index if base else 0) for index, name in enumerate(ALL_SERVICES)}


def service_env(name: str, base: Mapping[str, str], otlp: Mapping[str, str], metrics_port: int) -> dict[str, str]:
    """The environment of service ``name``: ``base`` plus where spans go, its name, propagators and ports."""
    env = dict(base)
    env.update(otlp)
    env.update(
        {
            "OTEL_SERVICE_NAME": name,
            "OTEL_PROPAGATORS": PROPAGATORS[name],
            "OTEL_BSP_SCHEDULE_DELAY": _BSP_SCHEDULE_DELAY_MS,
            "HOPTEL_METRICS_ADDR": f"{HOST}:{metrics_port}",
            "HOPTEL_LOG_FORMAT": base.get("HOPTEL_LOG_FORMAT", "json"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _external_endpoint(environ: Mapping[str, str]) -> str | None:
    return environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def _embedded_otlp(receiver: OTLPReceiver, environ: Mapping[str, str]) -> dict[str, str]:
    protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    endpoint = receiver.http_endpoint if protocol == "http/protobuf" else receiver.grpc_endpoint
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_TRACES_EXPORTER": "otlp",
        # the latency histograms are also pushed to the receiver, every second (see _show_pushed_metrics)
        "OTEL_METRICS_EXPORTER": "otlp,prometheus",
        "OTEL_METRIC_EXPORT_INTERVAL": _METRIC_EXPORT_INTERVAL_MS,
    }


class TraceTail:
    """With ``--keep-running``: collects spans from the receiver and hands out traces that went quiet.

    ``add`` is the receiver's ``on_spans`` listener; it keeps nothing until ``start()``.
    """

    def __init__(self) -> None:
        self._arrivals: queue.SimpleQueue[Sequence[ReceivedSpan]] = queue.SimpleQueue()
        self._pending: dict[str, tuple[list[ReceivedSpan], float]] = {}
        self._done: set[str] = set()
        self._enabled = False

    def add(self, spans: Sequence[ReceivedSpan]) -> None:
        """Receive a batch of spans (called on the receiver's threads)."""
        if self._enabled:
            self._arrivals.put(spans)

    def start(self, already_shown: set[str]) -> None:
        """Start collecting; spans of ``already_shown`` traces are ignored."""
        self._done = set(already_shown)
        self._enabled = True

    def due(self, now: float) -> list[list[ReceivedSpan]]:
        """The traces no span arrived for since ``_IDLE_S`` seconds before ``now``; each is handed out once."""
        while True:
            try:
                batch = self._arrivals.get_nowait()
            except queue.Empty:
                break
            for span in batch:
                if span.trace_id not in self._done:
                    spans, _ = self._pending.get(span.trace_id, ([], now))
                    spans.append(span)
                    self._pending[span.trace_id] = (spans, now)
        quiet = [trace_id for trace_id, (_, last) in self._pending.items() if now - last >= _IDLE_S]
        self._done.update(quiet)
        return [self._pending.pop(trace_id)[0] for trace_id in quiet]


def _heading(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def _start_services(
    supervisor: Supervisor, envs: Mapping[str, dict[str, str]], args: argparse.Namespace
) -> dict[str, Ready]:
    """Start the leaves first, then orders, then the gateway, each once what it calls is ready."""
    timeout = args.startup_timeout
    inventory = supervisor.start("inventory", "examples.services.inventory", [], envs["inventory"])
    pricing = supervisor.start("pricing", "examples.services.pricing", [], envs["pricing"])
    ready = {"inventory": supervisor.wait_ready(inventory, time.monotonic() + timeout)}
    ready["pricing"] = supervisor.wait_ready(pricing, time.monotonic() + timeout)
    peers = ["--inventory", ready["inventory"].address, "--pricing", f"http://{ready['pricing'].address}"]
    orders = supervisor.start("orders", "examples.services.orders", peers, envs["orders"])
    ready["orders"] = supervisor.wait_ready(orders, time.monotonic() + timeout)
    gateway_args = ["--orders", ready["orders"].address, "--port", str(args.gateway_port)]
    module = "examples.services.gateway"
    if args.gateway_workers > 1:  # uvicorn's workers share one port, so it is chosen here rather than by each
        module = "examples.services.gateway_workers"
        gateway_args = ["--orders", ready["orders"].address, "--port", str(args.gateway_port or free_port(HOST))]
        gateway_args += ["--workers", str(args.gateway_workers)]
    gateway = supervisor.start("gateway", module, gateway_args, envs["gateway"])
    ready["gateway"] = supervisor.wait_ready(gateway, time.monotonic() + timeout)
    return ready


def _show_traces(
    receiver: OTLPReceiver, outcomes: Sequence[Outcome], log_files: list[Path], summary: list[str]
) -> list[str]:
    """Print each request with its trace; return the problems found (unexpected answers, incomplete traces)."""
    problems: list[str] = []
    for number, outcome in enumerate(outcomes, 1):
        print(report.describe_outcome(number, outcome), flush=True)
        if not outcome.as_expected:
            problems.append(f"request {number} ({outcome.scenario.request_line}) answered HTTP {outcome.http_status}")
        spans: list[ReceivedSpan] = []
        if outcome.trace_id is not None:
            try:
                spans = receiver.wait_for_trace(outcome.trace_id, outcome.scenario.spans, timeout=_TRACE_WAIT_S)
            except TimeoutError:
                spans = receiver.traces().get(outcome.trace_id, [])
                problems.append(f"request {number}: {len(spans)} of {outcome.scenario.spans} spans arrived")
            problems.extend(f"request {number}: {p}" for p in report.trace_problems(outcome, spans))
        logs = report.correlated_logs(log_files, outcome.trace_id) if outcome.trace_id else []
        print(report.format_trace_section(outcome, spans, logs) + "\n", flush=True)
        summary.append(report.summary_trace(outcome, spans, logs))
    return problems


def _show_pushed_metrics(receiver: OTLPReceiver, summary: list[str]) -> list[str]:
    """Print each service's histogram series as pushed over OTLP; return the services whose push did not arrive.

    Waits for a push made after this call began (every request has been answered by then), so the counts are final.
    """
    problems: list[str] = []
    since = time.time_ns()
    for name in ALL_SERVICES:
        try:
            receiver.wait_for_metrics(
                1, timeout=_TRACE_WAIT_S, predicate=lambda p, name=name: p.service_name == name and p.time_ns >= since
            )
        except TimeoutError:
            problems.append(f"no OTLP metrics arrived from {name}")
            continue
        lines = format_metrics(p for p in receiver.metrics() if p.service_name == name).splitlines()
        print(name)
        print("\n".join(f"  {line}" for line in lines), flush=True)
        summary.append(json.dumps({"type": "otlp_metrics", "service": name, "lines": lines}))
    return problems


def _show_metrics(ready: Mapping[str, Ready], summary: list[str]) -> list[str]:
    """Print a few lines from each metrics endpoint; return the endpoints that could not be scraped."""
    problems: list[str] = []
    for name in ALL_SERVICES:
        url = ready[name].metrics_url
        if url is None:
            continue
        try:
            lines = report.metric_lines(report.scrape(url), report.METRIC_FAMILIES[name])
        except httpx.HTTPError as error:
            problems.append(f"could not scrape {name}'s metrics at {url}: {error}")
            continue
        print(f"{name}  {url}")
        print("\n".join(f"  {line}" for line in lines) or "  (no samples yet)", flush=True)
        summary.append(json.dumps({"type": "metrics", "service": name, "url": url, "lines": lines}))
    return problems


def _wait_for_worker_counts(url: str, requests: int) -> None:
    """With several gateway workers: wait (bounded) until the one metrics address counts every request sent.

    The worker that serves the address reads the others' counts from the state they write every
    ``HOPTEL_METRICS_PUBLISH_INTERVAL`` ms (1 s by default), so a scrape right after the requests may lag that long.
    """
    deadline = time.monotonic() + _EXPORT_WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if report.sample_total(report.scrape(url), "http_server_request_duration_seconds_count") >= requests:
                return
        time.sleep(_TICK_S)


def _check_exported(ready: Mapping[str, Ready], endpoint: str) -> list[str]:
    """With an external endpoint: wait (bounded) until every service's exporter has had spans accepted.

    The demo cannot see the backend, but each service counts the spans its exporter got through
    (``hoptel_spans_exported_total``); zero after a while means a wrong endpoint or protocol.
    """
    pending = {name: r.metrics_url for name, r in ready.items() if r.metrics_url}
    deadline = time.monotonic() + _EXPORT_WAIT_S
    while pending and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            with contextlib.suppress(httpx.HTTPError):
                if report.sample_value(report.scrape(url), report.SPANS_EXPORTED) > 0:
                    del pending[name]
        time.sleep(_TICK_S)
    if not pending:
        return []
    return [
        f"{endpoint} accepted no span from {', '.join(pending)}: is it up, and is the protocol right? "
        "OTEL_EXPORTER_OTLP_PROTOCOL is http/protobuf by default (port 4318), grpc uses 4317; the logs say more"
    ]


def _where_next(args: argparse.Namespace, log_dir: Path, gateway: str) -> None:
    _heading("Where to look next")
    lines = [
        f"the services' JSON logs, one file each: {log_dir}/",
        "their code: examples/services/ (gateway.py, orders.py, inventory.py, pricing.py), runner: examples/demo.py",
        "explore it live: python -m examples.demo --keep-running   (then curl the gateway; new traces print)",
        "watch traces from your own programs: python -m hoptel.receiver   (OTLP on 4317/4318, trees on stdout)",
        "send the traces to a collector: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 scripts/demo"
        "   (OTLP/HTTP; its config: examples/otel-collector.yaml)",
    ]
    if args.metrics_port_base == DEFAULT_METRICS_PORT:
        lines.append(
            "scrape the metrics with Prometheus: prometheus --config.file=examples/prometheus.yml "
            "--enable-feature=exemplar-storage   (with --keep-running)"
        )
    print("\n".join(f"  - {line}" for line in lines), flush=True)
    if args.keep_running:
        print(f'\n  try: curl -s {gateway}/orders -d \'{{"sku": "gadget", "quantity": 3}}\'', flush=True)


def _keep_running(supervisor: Supervisor, tail: TraceTail | None, shown: set[str]) -> None:
    print("\nThe services keep running; new traces are printed as they finish. Ctrl-C stops everything.", flush=True)
    if tail is not None:
        tail.start(shown)
    try:
        while True:
            supervisor.check_alive()
            for spans in tail.due(time.monotonic()) if tail is not None else ():
                print(format_trace(spans) + "\n", flush=True)
            time.sleep(_TICK_S)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run the demo; see the module docstring.

    Raises:
        DemoError: a port is taken, or a service died or never became ready.
    """
    ports = metrics_ports(args.metrics_port_base)
    if args.gateway_workers > 1 and ports["gateway"] == 0:
        ports["gateway"] = free_port(HOST)  # the gateway's workers share one metrics address: a fixed port
    busy = taken_ports(HOST, {f"{name} metrics": port for name, port in ports.items()})
    if busy:
        print(
            "demo: these ports are in use, so nothing was started:\n    "
            + "\n    ".join(busy)
            + "\n  stop whatever holds them (`ss -ltnp` shows it), or choose other metrics ports with "
            "--metrics-port-base (0 = any free ports)",
            file=sys.stderr,
        )
        return 1
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="hoptel-demo-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    summary: list[str] = []
    problems: list[str] = []
    external = _external_endpoint(environ)
    tail = TraceTail() if args.keep_running and external is None else None
    with contextlib.ExitStack() as stack:
        receiver: OTLPReceiver | None = None
        otlp: dict[str, str] = {}
        if external is None:
            receiver = OTLPReceiver(HOST, on_spans=tail.add if tail is not None else None)
            try:
                receiver.start()
            except OSError as error:
                raise DemoError(f"the embedded OTLP receiver could not start: {error}") from None
            stack.callback(receiver.stop)
            otlp = _embedded_otlp(receiver, environ)
            print(f"spans go to the embedded OTLP receiver at {otlp['OTEL_EXPORTER_OTLP_ENDPOINT']}", flush=True)
        else:
            protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            print(f"spans go to {external} over {protocol} (no embedded receiver: OTEL_EXPORTER_OTLP_ENDPOINT is set)")
        supervisor = stack.enter_context(Supervisor(log_dir))
        envs = {name: service_env(name, environ, otlp, ports[name]) for name in ALL_SERVICES}
        ready = _start_services(supervisor, envs, args)
        gateway = f"http://{ready['gateway'].address}"
        print(f"all {len(ready)} services are ready; the gateway listens on {gateway}", flush=True)
        summary.append(json.dumps({"type": "processes", "pids": {s.name: s.pid for s in supervisor.services}}))

        try:
            outcomes = drive(gateway)
        except httpx.HTTPError as error:
            supervisor.check_alive()  # a dead service explains it better
            raise DemoError(f"the gateway did not answer: {error!r}") from None
        supervisor.check_alive()
        _heading("Requests and their traces")
        log_files = [service.log_path for service in supervisor.services]
        if receiver is not None:
            problems += _show_traces(receiver, outcomes, log_files, summary)
        elif external is not None:
            for number, outcome in enumerate(outcomes, 1):
                print(f"{report.describe_outcome(number, outcome)}\n   trace {outcome.trace_id}: see {external}\n")
            problems += _check_exported(ready, external)
        gateway_metrics = ready["gateway"].metrics_url
        if args.gateway_workers > 1 and gateway_metrics is not None:
            _wait_for_worker_counts(gateway_metrics, len(outcomes))
        _heading("Metrics (a few lines from each service's endpoint)")
        problems += _show_metrics(ready, summary)
        if receiver is not None:
            _heading("Metrics pushed over OTLP to the receiver (per series: count, p50, p99 from the buckets)")
            problems += _show_pushed_metrics(receiver, summary)
        _where_next(args, log_dir, gateway)
        if args.json_summary:
            _heading("Summary (JSON lines)")
            summary.append(json.dumps({"type": "result", "ok": not problems, "problems": problems}))
            print("\n".join(summary), flush=True)
        if args.keep_running:
            _keep_running(supervisor, tail, {o.trace_id for o in outcomes if o.trace_id})
    if problems:
        print("\ndemo: something did not go as expected:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("\nall services stopped; demo finished", flush=True)
    return 0


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt  # SIGTERM stops the demo the way Ctrl-C does: everything it started is stopped


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the demo; returns the exit status."""
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args, os.environ)
    except DemoError as error:
        print(f"\ndemo: {error}", file=sys.stderr, flush=True)
        print("demo: everything it started has been stopped", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; everything it started has been stopped", file=sys.stderr, flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
