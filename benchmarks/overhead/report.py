"""From trials to numbers: medians, paired overheads, ratios, the targets of issue 8, and the markdown table.

"Added" is paired: in each repetition a variant's µs/op minus bare's µs/op of the same repetition (measured
minutes apart at most, in alternating order), and the median of those differences is reported, with half
their range as a rough spread. Ratios are hoptel's added CPU over the official stack's.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.overhead.launcher import Trial
from benchmarks.overhead.machine import Machine
from benchmarks.overhead.spec import WORKLOADS, Workload

__all__ = ["Row", "TargetResult", "evaluate_targets", "render_markdown", "summarize", "to_json"]

_NONE = "-"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: one variant of one workload."""

    workload: str
    variant: str
    reps: int
    client_us: float
    server_us: float
    added_client: float | None
    added_server: float | None
    added_total: float | None
    added_spread: float | None
    spans_per_op: float
    wall_us: float


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One target of issue 8 and whether this run met it (None: not measured in this run)."""

    target: str
    measured: str
    met: bool | None


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def summarize(trials: Sequence[Trial]) -> list[Row]:
    """One row per (workload, variant), in workload order, bare first."""
    rows: list[Row] = []
    for work in WORKLOADS:
        mine = [t for t in trials if t.workload == work.key]
        variants = list(dict.fromkeys(t.variant for t in mine))
        bare = {t.rep: t for t in mine if t.variant == "bare"}
        for variant in sorted(variants, key=lambda v: (v != "bare", v)):
            runs = [t for t in mine if t.variant == variant]
            paired = [(t, bare[t.rep]) for t in runs if t.rep in bare]
            added_client = [t.client_us - b.client_us for t, b in paired]
            added_server = [t.server_us - b.server_us for t, b in paired]
            added_total = [c + s for c, s in zip(added_client, added_server, strict=True)]
            has_added = bool(paired) and variant != "bare"
            rows.append(
                Row(
                    workload=work.key,
                    variant=variant,
                    reps=len(runs),
                    client_us=_median([t.client_us for t in runs]),
                    server_us=_median([t.server_us for t in runs]),
                    added_client=_median(added_client) if has_added else None,
                    added_server=_median(added_server) if has_added else None,
                    added_total=_median(added_total) if has_added else None,
                    added_spread=(max(added_total) - min(added_total)) / 2 if has_added else None,
                    spans_per_op=_median([t.spans / t.ops for t in runs]),
                    wall_us=_median([t.client_wall / t.ops * 1e6 for t in runs]),
                )
            )
    return rows


def _row(rows: Sequence[Row], workload: str, variant: str) -> Row | None:
    return next((r for r in rows if r.workload == workload and r.variant == variant), None)


def _field(row: Row | None, name: str) -> float | None:
    """``row.<name>`` (a number or None), or None without a row."""
    if row is None:
        return None
    value: float | None = getattr(row, name)
    return value


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def evaluate_targets(rows: Sequence[Row], metric_record_us: float | None = None) -> list[TargetResult]:
    """The targets of issue 8, each met / not met / not measured (``metric_record_us``: see ``metric_record``)."""
    results: list[TargetResult] = []
    for key in ("W1", "W2"):
        hop, off = _row(rows, key, "hoptel"), _row(rows, key, "official")
        ratio = _ratio(_field(hop, "added_total"), _field(off, "added_total"))
        results.append(
            TargetResult(
                f"{key}: hoptel added CPU per RPC ≤ 0.33 x official",
                _NONE if ratio is None else f"{ratio:.2f} x",
                None if ratio is None else ratio <= 0.33,
            )
        )
    hop, off = _row(rows, "W4", "hoptel"), _row(rows, "W4", "official")
    ratio = _ratio(_field(hop, "added_client"), _field(off, "added_client"))
    results.append(
        TargetResult(
            "W4: hoptel added client CPU per request ≤ 0.33 x opentelemetry-instrumentation-httpx",
            _NONE if ratio is None else f"{ratio:.2f} x",
            None if ratio is None else ratio <= 0.33,
        )
    )
    hop, bare = _row(rows, "W5", "hoptel"), _row(rows, "W5", "bare")
    share = _ratio(_field(hop, "added_total"), bare.client_us + bare.server_us if bare else None)
    results.append(
        TargetResult(
            "W5: total CPU overhead ≤ 2 % against bare",
            _NONE if share is None else f"{share * 100:.2f} %",
            None if share is None else share <= 0.02,
        )
    )
    hop = _row(rows, "W6", "hoptel")
    added = hop.added_total if hop is not None else None
    results.append(
        TargetResult(
            "W6: unsampled hop (client + server) ≤ 15 µs added CPU",
            _NONE if added is None else f"{added:.1f} µs",
            None if added is None else added <= 15.0,
        )
    )
    results.append(
        TargetResult(
            "per-call metric record ≤ 1 µs (started + handled + latency with exemplar)",
            _NONE if metric_record_us is None else f"{metric_record_us:.2f} µs",
            None if metric_record_us is None else metric_record_us <= 1.0,
        )
    )
    return results


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return _NONE
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _status(met: bool | None) -> str:
    return _NONE if met is None else ("met" if met else "**not met**")


def render_markdown(
    rows: Sequence[Row], machine: Machine, *, mode: str, command: str, metric_record_us: float | None = None
) -> str:
    """The result as markdown: the table, the targets, and the machine and versions it was measured on."""
    titles = {w.key: w for w in WORKLOADS}
    lines = [
        f"Measured {machine.date} · {mode} · `{command}`",
        "",
        "CPU µs per operation of the client and the server process (user + system, `getrusage`), medians over the",
        "repetitions; *added* is the paired difference against bare (± half its range over the repetitions).",
        "",
        "| workload | variant | client µs/op | server µs/op | added client µs | added server µs | added total µs "
        "| hoptel/official client | hoptel/official total | spans/op |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        work: Workload = titles[row.workload]
        ratio_client = ratio_total = _NONE
        if row.variant.startswith("hoptel"):  # hoptel, and hoptel_interceptors when it ran
            off = _row(rows, row.workload, "official")
            rc = _ratio(row.added_client, _field(off, "added_client"))
            rt = _ratio(row.added_total, _field(off, "added_total"))
            ratio_client = _NONE if rc is None else f"{rc:.2f}"
            ratio_total = _NONE if rt is None else f"{rt:.2f}"
        total = _fmt(row.added_total, signed=True)
        if row.added_spread is not None and row.reps > 1:
            total += f" ± {row.added_spread:.1f}"
        lines.append(
            f"| {row.workload} {work.title} (per {work.unit}) | {row.variant} | {_fmt(row.client_us)} "
            f"| {_fmt(row.server_us)} | {_fmt(row.added_client, True)} | {_fmt(row.added_server, True)} | {total} "
            f"| {ratio_client} | {ratio_total} | {row.spans_per_op:.2f} |"
        )
    lines += ["", "Targets (issue 8):", "", "| target | measured | status |", "|---|--:|---|"]
    for target in evaluate_targets(rows, metric_record_us):
        lines.append(f"| {target.target} | {target.measured} | {_status(target.met)} |")
    versions = ", ".join(f"{name} {version}" for name, version in machine.versions.items())
    lines += [
        "",
        f"Machine: {machine.cpu_model}, {machine.cores} cores ({machine.usable_cores} usable), {machine.os}; "
        f"load average at start {machine.load_average[0]:.2f} / {machine.load_average[1]:.2f} / "
        f"{machine.load_average[2]:.2f}.",
        f"Python: {machine.python}. hoptel commit: {machine.git}.",
        f"Versions: {versions}.",
    ]
    return "\n".join(lines) + "\n"


def to_json(
    trials: Sequence[Trial],
    rows: Sequence[Row],
    machine: Machine,
    *,
    mode: str,
    metric_record_us: float | None = None,
) -> dict[str, Any]:
    """Everything, raw trials included, for later analysis."""
    return {
        "mode": mode,
        "machine": dataclasses.asdict(machine),
        "rows": [dataclasses.asdict(r) for r in rows],
        "targets": [dataclasses.asdict(t) for t in evaluate_targets(rows, metric_record_us)],
        "trials": [dataclasses.asdict(t) for t in trials],
    }
