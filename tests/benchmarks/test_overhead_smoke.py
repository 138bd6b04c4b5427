"""Smoke test of the overhead benchmark: the one command runs end to end and reports every variant.

Nothing here looks at a timing: the numbers of a quick run on a shared machine mean nothing. What must hold is
that the harness starts real servers and clients for bare, hoptel and official, measures them, and renders the
table, the targets and the machine facts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("bare", "hoptel", "official")


@pytest.mark.slow
def test_quick_run_of_one_workload_reports_every_variant(tmp_path: Path) -> None:
    """A quick W1 run prints a table with one row per variant, the targets, and writes the JSON beside it."""
    output = tmp_path / "overhead.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.overhead", "--quick", "--workloads", "W1", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    rows = [line for line in result.stdout.splitlines() if line.startswith("| W1 ")]
    assert [row.split("|")[2].strip() for row in rows] == list(VARIANTS)
    assert "W1: hoptel added CPU per RPC" in result.stdout
    assert "Machine: " in result.stdout
    assert "opentelemetry-instrumentation-grpc" in result.stdout
    assert output.read_text(encoding="utf-8") == result.stdout

    report = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    trials = report["trials"]
    assert sorted(t["variant"] for t in trials) == sorted(VARIANTS)
    assert all(t["ops"] > 0 and t["client_cpu"] > 0 and t["server_cpu"] > 0 for t in trials)
    spans_per_rpc = {t["variant"]: t["spans"] / t["ops"] for t in trials}
    assert spans_per_rpc == {"bare": 0, "hoptel": 2, "official": 2}  # one CLIENT and one SERVER span per RPC
