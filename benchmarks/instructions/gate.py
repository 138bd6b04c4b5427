"""The instruction-count gate: hoptel's hop path counted under callgrind, compared with a committed baseline.

``measure_hops()`` runs ``hop_loop`` under callgrind (one process, a few seconds of work, about 15 s under
valgrind) and returns the instructions each hop adds, per scenario: ``(count(2N) - count(N)) / N`` of the calling
thread, minus the same for an empty call (the loop itself). ``compare()`` checks those figures against the
baseline in ``benchmarks/instruction_baseline.json``: a figure more than ``TOLERANCE`` above its baseline fails.

Counts depend on the interpreter (CPython's version and the machine's architecture change the instructions a
bytecode takes), so the baseline file holds one baseline per ``interpreter_key()`` (``CPython-3.11-x86_64``). On
an interpreter without one the gate fails and says how to record one: ``python -m benchmarks.instructions --gate
--update-baseline``, committed with a message that says why. Versions of the libraries on the hop path are stored
beside each baseline and named in a failure, since a newer opentelemetry-api or grpcio moves the counts too.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.instructions.callgrind import (
    MARK_SYMBOL,
    callgrind_argv,
    child_environment,
    interpreter_key,
    read_counts,
)
from benchmarks.instructions.hop_loop import ENCODE_BATCH

__all__ = [
    "BASELINE_PATH",
    "GATE_CALLS",
    "GATE_WARMUP",
    "HOP_PACKAGES",
    "TOLERANCE",
    "GateError",
    "GateResult",
    "compare",
    "figures_from_counts",
    "load_baseline",
    "measure_hops",
    "write_baseline",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
BASELINE_PATH = REPO_ROOT / "benchmarks" / "instruction_baseline.json"
TOLERANCE = 0.05
"""A hop may grow by this share of its baseline before the gate fails."""
GATE_CALLS = 100
"""N: the phases run N and 2N calls of every scenario; the difference is exact, so a small N suffices."""
GATE_WARMUP = 20
HOP_PACKAGES = ("hoptel", "opentelemetry-api", "opentelemetry-sdk", "grpcio", "prometheus-client", "protobuf")
"""The libraries whose code runs on the counted hop path (their versions are recorded with a baseline)."""
_UPDATE_COMMAND = "python -m benchmarks.instructions --gate --update-baseline"
_TIMEOUT_S = 600.0


class GateError(RuntimeError):
    """The gate could not measure (valgrind failed, the program died, the dumps are not what was expected)."""


@dataclass(frozen=True)
class GateResult:
    """The outcome of comparing measured figures with a baseline.

    Attributes:
        failures: one line per figure that grew more than the tolerance (or is missing from the measurement).
        report: one line per figure: measured, baseline, change.
    """

    failures: list[str]
    report: list[str]

    @property
    def passed(self) -> bool:
        """True when no figure grew beyond the tolerance."""
        return not self.failures


def figures_from_counts(scenarios: list[str], main_thread: list[int], n: int) -> dict[str, float]:
    """Instructions each scenario adds per call, from the calling thread's dumps in order.

    ``main_thread[0]`` is start-up up to the first mark; scenario ``i`` then left three dumps: its N phase, its 2N
    phase, and the stretch up to the next scenario's first mark (its warm-up). ``encode sampled`` is per span.

    Raises:
        GateError: fewer dumps than the scenarios need.
    """
    needed = 3 * len(scenarios)
    if len(main_thread) < needed:
        raise GateError(f"expected at least {needed} dumps of the calling thread, got {len(main_thread)}")
    per_call = {name: (main_thread[3 * i + 2] - main_thread[3 * i + 1]) / n for i, name in enumerate(scenarios)}
    loop = per_call.pop("empty", 0.0)
    figures = {name: value - loop for name, value in per_call.items()}
    if "encode sampled" in figures:
        figures["encode sampled"] /= ENCODE_BATCH
    return {name: round(value, 1) for name, value in figures.items()}


def measure_hops(
    n: int = GATE_CALLS, warmup: int = GATE_WARMUP, program: str = "benchmarks.instructions.hop_loop"
) -> dict[str, float]:
    """Run ``program`` (``hop_loop``) under callgrind and return the instructions each hop adds (module docstring).

    ``program`` takes ``N WARMUP MANIFEST`` and counts its scenarios as ``hop_loop`` does (``hop_parts`` too).

    Raises:
        GateError: valgrind or the program failed.
    """
    with tempfile.TemporaryDirectory(prefix="hoptel-gate-") as tmp:
        out = Path(tmp)
        manifest = out / "manifest.json"
        process = subprocess.run(
            callgrind_argv(["-m", program, str(n), str(warmup), str(manifest)], out, dump_before=MARK_SYMBOL),
            cwd=REPO_ROOT,
            env=child_environment(os.environ),
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if process.returncode != 0:
            raise GateError(f"valgrind exited with status {process.returncode}:\n{process.stderr[-4000:]}")
        pids = {path.name.split(".")[2].split("-")[0] for path in out.glob("callgrind.out.*")}
        if len(pids) != 1:
            raise GateError(f"expected the dumps of one process, found {sorted(pids)}")
        counts = read_counts(out, int(pids.pop()))
        ran = json.loads(manifest.read_text(encoding="utf-8"))
        main_thread = [count.instructions for count in counts if count.thread == 1]
        return figures_from_counts(list(ran["scenarios"]), main_thread, int(ran["n"]))


def _versions() -> dict[str, str]:
    found = {}
    for package in HOP_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def load_baseline(path: Path = BASELINE_PATH) -> dict[str, Any]:
    """The whole baseline file (``{"baselines": {interpreter key: {...}}}``); empty when there is none."""
    if not path.exists():
        return {"baselines": {}}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def compare(
    measured: Mapping[str, float],
    baseline_file: Mapping[str, Any],
    key: str,
    tolerance: float = TOLERANCE,
) -> GateResult:
    """Compare ``measured`` with the baseline recorded for interpreter ``key``.

    Fails every figure above ``baseline * (1 + tolerance)``, every baseline figure not measured, and everything
    when ``key`` has no baseline (the message says how to record one).
    """
    entry = baseline_file.get("baselines", {}).get(key)
    if entry is None:
        known = ", ".join(sorted(baseline_file.get("baselines", {}))) or "none"
        return GateResult(
            failures=[
                f"no instruction baseline for {key} (baselines exist for: {known}). Counts differ between "
                f"interpreter versions and architectures, so one does not apply to another. Record one on this "
                f"interpreter with `{_UPDATE_COMMAND}` and commit benchmarks/instruction_baseline.json, saying why."
            ],
            report=[],
        )
    figures: Mapping[str, float] = entry["figures"]
    failures, report = [], []
    for name, base in figures.items():
        value = measured.get(name)
        if value is None:
            failures.append(f"{name}: in the baseline but not measured")
            continue
        change = value / base - 1.0 if base else 0.0
        line = f"{name:<30} {value:>10.1f} instructions/hop  baseline {base:>10.1f}  {change:+7.2%}"
        report.append(line)
        if value > base * (1.0 + tolerance):
            failures.append(f"{line}  > +{tolerance:.0%}")
    if failures:
        recorded = entry.get("versions", {})
        now = _versions()
        moved = [f"{p} {recorded.get(p)} -> {now[p]}" for p in now if recorded.get(p) not in (None, now[p])]
        if moved:
            failures.append(f"(library versions differ from the baseline's: {', '.join(moved)})")
        failures.append(
            f"If the growth is intended, move the baseline on purpose: `{_UPDATE_COMMAND}`, and say why in the commit."
        )
    return GateResult(failures=failures, report=report)


def write_baseline(measured: Mapping[str, float], path: Path = BASELINE_PATH) -> None:
    """Record ``measured`` as this interpreter's baseline, keeping the other interpreters' baselines."""
    data = load_baseline(path)
    data.setdefault("baselines", {})[interpreter_key()] = {
        "recorded": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": sys.version.split()[0],
        "versions": _versions(),
        "calls": GATE_CALLS,
        "figures": dict(measured),
    }
    data["about"] = (
        "Instructions each hop of hoptel adds, counted with callgrind by `python -m benchmarks.instructions --gate`; "
        "the test suite fails when a figure grows more than 5 % over the baseline of its interpreter."
    )
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
