"""The memory benchmark's plain-text table and its JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.memory.heap import InFlight, MetricSeries, QueuedSpans, Retained
from benchmarks.memory.rss import RssRun
from benchmarks.overhead.machine import Machine

__all__ = ["render", "write_json"]

FLAT_MIB = 5.0
"""The issue's claim: RSS flat within ±5 MB over the run."""


def render(
    command: str,
    machine: Machine,
    commit: str,
    spans: QueuedSpans | None,
    kept: Retained | None,
    series: MetricSeries | None,
    held: InFlight | None,
    rss: RssRun | None,
) -> str:
    """The table, the RSS samples and the machine facts, as plain text."""
    lines = [f"Measured {machine.date} · `{command}` · hoptel commit {commit}", ""]
    if spans or series or held:
        lines += ["Python heap (tracemalloc, after gc.collect(); hoptel's share = instrumented minus bare)", ""]
        lines.append(f"{'what':<58} {'bytes':>10}  how")
    if spans:
        lines.append(
            f"{'per queued span (finished, waiting in the batch queue)':<58} {spans.bytes_per_span:>10,.0f}"
            f"  {spans.spans_second:,} spans queued by {spans.rpcs:,} RPCs, after {spans.spans_first:,} others"
        )
    if kept:
        lines.append(
            f"{'left on the heap per finished unsampled RPC (leak check)':<58} {kept.bytes_per_rpc:>10,.1f}"
            f"  {kept.rpcs:,} RPCs on one method, after {kept.rpcs:,} others"
        )
    if series:
        lines += [
            f"{'per new method, hoptel server + client':<58} {series.hoptel_both:>10,.0f}"
            f"  {series.methods:,} new methods; {series.label_sets_per_method} label sets,"
            f" {series.lines_per_method} exposition lines",
            f"{'  of which server side':<58} {series.hoptel_server:>10,.0f}",
            f"{'  of which client side':<58} {series.hoptel_client:>10,.0f}",
            f"{'per metric series (label set of one family)':<58} {series.bytes_per_label_set:>10,.0f}",
            f"{'per exposition line (histogram buckets included)':<58} {series.bytes_per_line:>10,.0f}",
            f"{'  (bare grpc, per new method)':<58} {series.bare:>10,.0f}",
        ]
    if held:
        lines += [
            f"{'per in-flight RPC, hoptel server + client':<58} {held.hoptel_both:>10,.0f}"
            f"  {held.rpcs} RPCs held in the handler, sampled",
            f"{'  of which server side':<58} {held.hoptel_server:>10,.0f}",
            f"{'  of which client side':<58} {held.hoptel_client:>10,.0f}",
            f"{'  (bare grpc + handler thread, per RPC)':<58} {held.bare:>10,.0f}",
        ]
    if rss:
        assert rss.client is not None
        assert rss.server is not None
        verdict = "flat" if rss.flat_within_mib <= FLAT_MIB else "NOT flat"
        lines += [
            *([""] if spans or kept or series or held else []),
            f"RSS over {rss.rpcs:,} sync unary RPCs after {rss.warmup:,} warm-up RPCs "
            f"({rss.client_threads} client threads, sampling {rss.ratio:g}, {rss.seconds:,.0f} s, "
            f"{rss.spans_received:,} spans received), MiB",
            "",
            f"{'process':<10} {'first':>8} {'last':>8} {'last-first':>11} {'max |drift|':>12} {'min':>8} {'max':>8}",
        ]
        for name, d in (("client", rss.client), ("server", rss.server)):
            lines.append(
                f"{name:<10} {d.first_mib:>8.1f} {d.last_mib:>8.1f} {d.last_minus_first_mib:>+11.1f}"
                f" {d.max_abs_from_first_mib:>12.1f} {d.min_mib:>8.1f} {d.max_mib:>8.1f}"
            )
        lines += [
            "",
            f"claim: RSS flat within ±{FLAT_MIB:g} MB → largest drift {rss.flat_within_mib:.1f} MiB: {verdict}",
            "",
            f"{'RPCs':>10} {'s':>7} {'client MiB':>11} {'server MiB':>11} {'receiver MiB':>13}",
        ]
        lines += [
            f"{s.rpcs:>10,} {s.seconds:>7.1f} {s.client_kib / 1024:>11.1f} {s.server_kib / 1024:>11.1f}"
            f" {s.receiver_kib / 1024:>13.1f}"
            for s in rss.samples
        ]
    lines += [
        "",
        f"Machine: {machine.cpu_model}, {machine.cores} cores ({machine.usable_cores} usable), {machine.os};"
        f" load average at start {' / '.join(str(x) for x in machine.load_average)}.",
        f"Python: {machine.python}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in machine.versions.items() if v != "not installed")
        + ".",
    ]
    return "\n".join(lines) + "\n"


def write_json(
    path: Path,
    command: str,
    machine: Machine,
    commit: str,
    parts: dict[str, Any],
) -> None:
    """Every figure, the machine and the command, as JSON."""
    data = {"command": command, "commit": commit, "machine": asdict(machine)}
    data |= {name: part.as_dict() for name, part in parts.items() if part is not None}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
