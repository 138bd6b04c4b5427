"""The overhead benchmark: the one command runs end to end and reports every variant; its arithmetic is right.

Nothing here looks at a timing: the numbers of a quick run on a shared machine mean nothing. What must hold is
that the harness starts real servers and clients for bare, hoptel and official, measures them, and renders the
table, the targets and the machine facts (the slow smoke test), and that pairing, targets, alternation, the
workers' environment and the profiler's attribution do what the README says (fast tests on made-up inputs).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("bare", "hoptel", "official")


@pytest.mark.slow
def test_quick_run_of_one_workload_reports_every_variant(tmp_path: Path) -> None:
    """A quick W1 run prints a table with one row per variant, the targets, and writes the JSON beside it."""
    output = tmp_path / "overhead.md"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.overhead", "--quick", "--reps", "2"),
            *("--workloads", "W1", "--output", str(output)),
        ],
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
    assert sorted(t["variant"] for t in trials) == sorted(VARIANTS * 2)
    assert all(t["ops"] > 0 and t["client_cpu"] > 0 and t["server_cpu"] > 0 for t in trials)
    spans_per_rpc = {(t["variant"], t["spans"] / t["ops"]) for t in trials}  # every trial, both repetitions
    assert spans_per_rpc == {("bare", 0), ("hoptel", 2), ("official", 2)}  # one CLIENT and one SERVER span per RPC
    # every repetition runs in new processes (a process keeps its own speed for its whole life)
    for variant in VARIANTS:
        pids = [(t["server_pid"], t["client_pid"]) for t in trials if t["variant"] == variant]
        assert len(pids) == 2
        assert len(set(pids)) == 2
        assert 0 not in pids[0]
    (record,) = [t for t in report["targets"] if t["target"].startswith("per-call metric record")]
    assert record["measured"].endswith(" µs")
    assert record["met"] is not None


# -- the harness's pure parts, imported from the checkout (benchmarks/ is not an installed package) -------------


@pytest.fixture
def overhead(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The ``benchmarks.overhead`` package of this checkout, importable for the test's duration."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    return importlib.import_module("benchmarks.overhead")


def _trial(variant: str, rep: int, client_us: float, server_us: float) -> Any:
    launcher = importlib.import_module("benchmarks.overhead.launcher")
    ops = 1000
    return launcher.Trial("W1", variant, rep, ops, client_us * ops / 1e6, server_us * ops / 1e6, 0.5, 2 * ops)


def test_added_cpu_is_the_median_of_differences_paired_by_repetition(overhead: types.ModuleType) -> None:
    """Each variant's added CPU pairs it with bare of the same repetition, so a drift shared by both cancels."""
    report = importlib.import_module("benchmarks.overhead.report")
    trials = [
        _trial("bare", 0, 100.0, 200.0),
        _trial("hoptel", 0, 110.0, 205.0),
        _trial("bare", 1, 300.0, 400.0),  # the machine got slower: both variants alike
        _trial("hoptel", 1, 312.0, 407.0),
        _trial("bare", 2, 100.0, 200.0),
        _trial("hoptel", 2, 111.0, 206.0),
    ]
    rows = {row.variant: row for row in report.summarize(trials)}
    assert rows["bare"].added_total is None
    assert rows["hoptel"].added_client == pytest.approx(11.0)
    assert rows["hoptel"].added_server == pytest.approx(6.0)
    assert rows["hoptel"].added_total == pytest.approx(17.0)
    assert rows["hoptel"].client_us == pytest.approx(111.0)


def test_targets_compare_hoptel_with_official_and_with_bare(overhead: types.ModuleType) -> None:
    """W1's target is met at a ratio of 0.3 and not met at 0.5; unmeasured targets are undecided."""
    report = importlib.import_module("benchmarks.overhead.report")
    trials = [
        _trial("bare", 0, 100.0, 100.0),
        _trial("hoptel", 0, 115.0, 115.0),
        _trial("official", 0, 150.0, 150.0),
    ]
    targets = {t.target.split(":")[0]: t for t in report.evaluate_targets(report.summarize(trials))}
    assert targets["W1"].met is True
    assert targets["W1"].measured == "0.30 x"
    assert targets["W2"].met is None

    (record,) = [t for t in report.evaluate_targets(report.summarize(trials)) if t.target.startswith("per-call")]
    assert record.met is None
    met = {t.target.split(":")[0]: t.met for t in report.evaluate_targets(report.summarize(trials), 0.8)}
    assert met["per-call metric record ≤ 1 µs (started + handled + latency with exemplar)"] is True
    missed = {t.target.split(":")[0]: t.met for t in report.evaluate_targets(report.summarize(trials), 1.2)}
    assert missed["per-call metric record ≤ 1 µs (started + handled + latency with exemplar)"] is False

    slower = [*trials[:1], _trial("hoptel", 0, 125.0, 125.0), trials[2]]
    targets = {t.target.split(":")[0]: t for t in report.evaluate_targets(report.summarize(slower))}
    assert targets["W1"].met is False


def test_variant_order_rotates_so_each_variant_takes_each_position(overhead: types.ModuleType) -> None:
    """Trials run A B C, B C A, C A B, then A B C again: over three repetitions each variant is once first."""
    launcher = importlib.import_module("benchmarks.overhead.launcher")
    variants = ["bare", "hoptel", "official"]
    orders = [launcher.variant_order(variants, rep) for rep in range(4)]
    assert orders[:3] == [variants, ["hoptel", "official", "bare"], ["official", "bare", "hoptel"]]
    assert orders[3] == variants
    for position in range(3):
        assert sorted(order[position] for order in orders[:3]) == sorted(variants)


def test_workers_get_the_benchmark_settings_and_none_of_the_shell(overhead: types.ModuleType) -> None:
    """OTEL_*/HOPTEL_* of the calling shell are dropped; endpoint, protocol and W5's sampler are set."""
    launcher = importlib.import_module("benchmarks.overhead.launcher")
    spec = importlib.import_module("benchmarks.overhead.spec")

    class _Receiver:
        grpc_endpoint = "http://127.0.0.1:4317"

    shell = {"PATH": "/bin", "OTEL_TRACES_SAMPLER": "always_off", "HOPTEL_LOG": "debug"}
    env = launcher.child_environment(shell, _Receiver(), spec.workload("W5"))
    assert env["PATH"] == "/bin"
    assert "HOPTEL_LOG" not in env
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://127.0.0.1:4317"
    assert (env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"]) == ("parentbased_traceidratio", "0.1")
    assert "OTEL_TRACES_SAMPLER" not in launcher.child_environment(shell, _Receiver(), spec.workload("W1"))


def test_profile_attributes_samples_to_instrumentation_or_work(overhead: types.ModuleType) -> None:
    """A hop's own gRPC call is work; OTel and hoptel leaves, and the exporter thread, are instrumentation."""
    hop_profile = importlib.import_module("benchmarks.overhead.hop_profile")
    site = "/py/lib/python3.11/site-packages"
    run = f"run (/work/main/benchmarks/overhead/grpc_worker.py:96);call ({site}/grpc/_interceptor.py:276)"
    intercept = "intercept_unary_unary (/work/main/interceptors/grpc/client.py:73)"
    raw = [
        f"{run};{intercept};_blocking ({site}/grpc/_channel.py:1136) 5\n",  # the RPC itself: work
        f"{run};{intercept};start_span ({site}/opentelemetry/sdk/trace/__init__.py:1100) 3\n",
        f"{run};{intercept};getrandbits (/py/lib/python3.11/random.py:10) 2\n",  # stdlib under hoptel: hoptel's
        "_bootstrap (/py/lib/python3.11/threading.py:1002);_export (/work/main/hoptel/batch.py:150);"
        f"export ({site}/grpc/_channel.py:1000) 4\n",  # the exporter thread, even inside grpc
    ]
    profile = hop_profile.parse_raw(raw)
    assert (profile.total, profile.instrumentation) == (14, 9)
    assert profile.by_area["span creation and end (OTel SDK, attributes)"] == 3
    assert profile.by_area["hoptel interceptors and recorder (own code)"] == 2
    assert profile.by_via["hoptel/batch.py:_export"] == 4
