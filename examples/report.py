"""What the demo prints: each request with its trace tree and correlated log lines, metrics, and a JSON summary.

The trees come from ``hoptel.receiver.format_trace``. The log lines are picked from the services' JSON log files
by ``trace_id``, which hoptel's JSON log format writes on every line logged while a span is current. The
metrics are a few lines of each service's Prometheus endpoint. ``summary_*`` build the machine-readable lines of
``--json-summary``: one JSON object per line, each with a ``"type"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc
import httpx

from examples.scenarios import Outcome
from hoptel.receiver import ReceivedSpan, format_trace

__all__ = [
    "METRIC_FAMILIES",
    "SPANS_EXPORTED",
    "correlated_logs",
    "describe_outcome",
    "format_log_line",
    "format_trace_section",
    "metric_lines",
    "sample_total",
    "sample_value",
    "scrape",
    "summary_trace",
    "trace_problems",
]

SPANS_EXPORTED = "hoptel_spans_exported_total"
"""hoptel's own counter of spans the exporter accepted."""

METRIC_FAMILIES: dict[str, tuple[str, ...]] = {
    "gateway": (
        "http_server_request_duration_seconds_count",
        "grpc_client_handled_total",
        SPANS_EXPORTED,
        "hoptel_worker_processes",  # with --gateway-workers: the workers whose counts the address merges
    ),
    "orders": (
        "grpc_server_handled_total",
        "grpc_client_handled_total",
        "http_client_request_duration_seconds_count",
        SPANS_EXPORTED,
    ),
    "inventory": ("grpc_server_handled_total", "grpc_server_msg_sent_total", SPANS_EXPORTED),
    "pricing": ("http_server_request_duration_seconds_count", SPANS_EXPORTED),
}
"""The samples the demo shows from each service's metrics endpoint."""

_SHOWN_ATTRIBUTES = ("rpc.grpc.status_code", "rpc.status_code", "http.response.status_code", "error.type")
_SCRAPE_TIMEOUT_S = 5.0


def describe_outcome(number: int, outcome: Outcome) -> str:
    """Two lines: the scenario's title, then the request, the answer and whether it was the expected one."""
    scenario = outcome.scenario
    verdict = "as expected" if outcome.as_expected else f"EXPECTED {scenario.http_status}"
    return (
        f"{number}. {scenario.title}\n"
        f"   {scenario.request_line} -> HTTP {outcome.http_status} ({verdict}): {outcome.summary}"
    )


def trace_problems(outcome: Outcome, spans: Sequence[ReceivedSpan]) -> list[str]:
    """What is wrong with a request's trace: missing services, spans not under its one root, a wrong gRPC code."""
    problems: list[str] = []
    missing = [name for name in outcome.scenario.services if name not in {s.service_name for s in spans}]
    if missing:
        problems.append(f"no span from {', '.join(missing)}")
    ids = {span.span_id for span in spans}
    roots = [span for span in spans if span.parent_span_id is None]
    orphans = [span for span in spans if span.parent_span_id is not None and span.parent_span_id not in ids]
    if len(roots) != 1:
        problems.append(f"{len(roots)} root spans instead of 1")
    expected_code = grpc.StatusCode[outcome.scenario.grpc_code].value[0]
    for span in spans:
        if span.service_name == "gateway" and span.kind == "CLIENT":
            code = span.attributes.get("rpc.grpc.status_code")
            if code != expected_code:
                problems.append(f"the gateway's call to orders ended with code {code}, not {expected_code}")
    problems.extend(f"{s.service_name} {s.name!r} has a parent that is not in the trace" for s in orphans)
    return problems


def correlated_logs(log_files: Iterable[Path], trace_id: str) -> list[dict[str, Any]]:
    """Every JSON log line in ``log_files`` that carries ``trace_id``, oldest first (by its timestamp)."""
    needle = f'"trace_id":"{trace_id}"'
    found: list[dict[str, Any]] = []
    for path in log_files:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if needle in line:
                    try:
                        found.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
    return sorted(found, key=lambda entry: str(entry.get("timestamp", "")))


def format_log_line(entry: dict[str, Any]) -> str:
    """``service  LEVEL  message`` for one JSON log entry."""
    return f"{entry.get('service.name', '?')}  {entry.get('level', '?')}  {entry.get('message', '')}"


def format_trace_section(outcome: Outcome, spans: Sequence[ReceivedSpan], logs: Sequence[dict[str, Any]]) -> str:
    """The tree of one request's trace followed by the log lines that carry its trace id."""
    lines = [format_trace(spans) if spans else "   (no spans received for this trace)"]
    if logs:
        lines.append("   logs with this trace_id:")
        lines.extend(f"     {format_log_line(entry)}" for entry in logs)
    return "\n".join(lines)


def scrape(url: str) -> str:
    """The Prometheus text exposition served at ``url``.

    Raises:
        httpx.HTTPError: the endpoint could not be scraped.
    """
    response = httpx.get(url, timeout=_SCRAPE_TIMEOUT_S)
    response.raise_for_status()
    return response.text


def metric_lines(exposition: str, families: Sequence[str], limit: int = 10) -> list[str]:
    """The first ``limit`` sample lines of ``families`` (exact sample names) in a text exposition."""
    wanted = tuple(f"{name}{{" for name in families) + tuple(f"{name} " for name in families)
    return [line for line in exposition.splitlines() if line.startswith(wanted)][:limit]


def sample_value(exposition: str, name: str) -> float:
    """The value of the label-less sample ``name`` in a text exposition (0.0 when absent)."""
    prefix = f"{name} "
    for line in exposition.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :].split()[0])
    return 0.0


def sample_total(exposition: str, name: str) -> float:
    """The sum of every sample ``name{...}`` (any labels) in a text exposition (0.0 when absent)."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith((f"{name}{{", f"{name} ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def summary_trace(outcome: Outcome, spans: Sequence[ReceivedSpan], logs: Sequence[dict[str, Any]]) -> str:
    """The ``--json-summary`` line of one request: its answer and every span with its parent link."""
    return json.dumps(
        {
            "type": "trace",
            "title": outcome.scenario.title,
            "request": outcome.scenario.body,
            "http_status": outcome.http_status,
            "expected_http_status": outcome.scenario.http_status,
            "expected_grpc_code": outcome.scenario.grpc_code,
            "trace_id": outcome.trace_id,
            "served_by": outcome.served_by,
            "spans": [
                {
                    "span_id": span.span_id,
                    "parent_span_id": span.parent_span_id,
                    "service": span.service_name,
                    "name": span.name,
                    "kind": span.kind,
                    "status": span.status_code,
                    "attributes": {key: span.attributes[key] for key in _SHOWN_ATTRIBUTES if key in span.attributes},
                }
                for span in sorted(spans, key=lambda span: span.start_ns)
            ],
            "logs": [format_log_line(entry) for entry in logs],
        }
    )
