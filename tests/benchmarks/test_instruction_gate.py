"""The instruction gate: hoptel's hop path, counted with callgrind, must not grow more than 5 % over the baseline.

The one speed gate of the suite. It counts instructions, not time, so the machine's load does not move it: the
hop loop runs under valgrind in one process with no network, and only the calling thread is counted. Moving the
baseline is a deliberate commit (``python -m benchmarks.instructions --gate --update-baseline``). Under CI
(``CI=true``) a missing valgrind fails the gate instead of skipping it; ``scripts/setup`` installs it.
"""

from __future__ import annotations

import importlib
import shutil
import types
from pathlib import Path
from typing import Any

import pytest
from support.ci import in_ci

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def instructions() -> types.ModuleType:
    """``benchmarks.instructions.gate`` of this checkout (benchmarks/ is not an installed package)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO_ROOT))
        return importlib.import_module("benchmarks.instructions.gate")


@pytest.fixture(scope="module")
def measured(instructions: types.ModuleType) -> dict[str, float]:
    """One callgrind count of the hop path, shared by the tests that need it (about 25 s)."""
    if shutil.which("valgrind") is None:
        if in_ci():
            pytest.fail("valgrind is missing under CI: the instruction gate cannot run (scripts/setup installs it)")
        pytest.skip("valgrind is not installed (apt-get install valgrind); under CI this fails")
    figures: dict[str, float] = instructions.measure_hops()
    return figures


@pytest.mark.slow
def test_hop_path_stays_within_five_percent_of_the_committed_baseline(
    instructions: types.ModuleType, measured: dict[str, float]
) -> None:
    """Every hop figure (client and server, sampled and unsampled, encoding) is at most 5 % over its baseline."""
    callgrind = importlib.import_module("benchmarks.instructions.callgrind")
    result = instructions.compare(measured, instructions.load_baseline(), callgrind.interpreter_key())
    assert result.passed, "\n".join([*result.report, "", *result.failures])
    assert len(result.report) == len(measured)


@pytest.mark.slow
def test_gate_fails_when_the_hop_path_is_ten_percent_slower_than_the_baseline(
    instructions: types.ModuleType, measured: dict[str, float]
) -> None:
    """The same measurement against a baseline 10 % below it (the hop path 11 % slower) fails, naming every hop.

    The lowered baseline is this measurement's figures, for every hop the committed baseline names, times 0.9:
    built from the committed figures instead, a hop path that got faster than its baseline (by more than 5 %)
    would pass against it and this test would fail for the wrong reason. The committed file is not touched.
    """
    callgrind = importlib.import_module("benchmarks.instructions.callgrind")
    key = callgrind.interpreter_key()
    committed = instructions.load_baseline()["baselines"].get(key, {"figures": measured})
    lowered: dict[str, Any] = {"baselines": {key: {**committed, "figures": {}}}}
    lowered["baselines"][key]["figures"] = {name: measured[name] * 0.9 for name in committed["figures"]}
    result = instructions.compare(measured, lowered, key)
    assert not result.passed
    for name in committed["figures"]:
        assert any(line.startswith(name) for line in result.failures), name
    assert any("--update-baseline" in line for line in result.failures)


@pytest.mark.slow
def test_sampled_hops_cost_more_than_unsampled_ones(measured: dict[str, float]) -> None:
    """The counts measure the hop: a sampled hop (span recorded and queued) adds more than an unsampled one."""
    for hop in ("client_hop", "server_hop", "client_channel", "server_interceptor"):
        assert measured[f"{hop} sampled"] > measured[f"{hop} unsampled"] > 0, hop
    assert measured["encode sampled"] > 0


def test_a_figure_just_under_the_tolerance_passes_and_just_over_fails(instructions: types.ModuleType) -> None:
    """+4.9 % over the baseline passes, +5.1 % fails; a baseline figure that was not measured fails too."""
    baseline = {"baselines": {"K": {"figures": {"client_hop sampled": 1000.0, "server_hop sampled": 1000.0}}}}
    ok = instructions.compare({"client_hop sampled": 1049.0, "server_hop sampled": 900.0}, baseline, "K")
    assert ok.passed, ok.failures
    bad = instructions.compare({"client_hop sampled": 1051.0, "server_hop sampled": 1000.0}, baseline, "K")
    assert [line.split()[0] for line in bad.failures[:1]] == ["client_hop"]
    missing = instructions.compare({"client_hop sampled": 1000.0}, baseline, "K")
    assert any("server_hop sampled: in the baseline but not measured" in line for line in missing.failures)


def test_another_interpreter_has_no_baseline_and_is_told_how_to_record_one(instructions: types.ModuleType) -> None:
    """Counts of CPython 3.11 on x86_64 do not apply to another version or architecture: the gate fails and says how."""
    baseline = {"baselines": {"CPython-3.11-x86_64": {"figures": {"client_hop sampled": 1000.0}}}}
    result = instructions.compare({"client_hop sampled": 1000.0}, baseline, "CPython-3.12-aarch64")
    assert not result.passed
    (message,) = result.failures
    assert "no instruction baseline for CPython-3.12-aarch64" in message
    assert "CPython-3.11-x86_64" in message
    assert "python -m benchmarks.instructions --gate --update-baseline" in message


@pytest.mark.parametrize("version", ["3.10", "3.11", "3.12", "3.13"])
def test_committed_baseline_covers_every_ci_interpreter_on_x86_64(instructions: types.ModuleType, version: str) -> None:
    """The repository carries a baseline for each CPython CI runs (.ci/run), with every scenario of the loop."""
    hop_loop = importlib.import_module("benchmarks.instructions.hop_loop")
    entry = instructions.load_baseline()["baselines"][f"CPython-{version}-x86_64"]
    expected = set(hop_loop.SCENARIOS) - {"empty"}
    assert set(entry["figures"]) == expected
    assert all(value > 0 for value in entry["figures"].values())


def test_per_hop_figures_are_the_difference_of_the_two_phases_minus_the_empty_loop(
    instructions: types.ModuleType,
) -> None:
    """(count(2N) - count(N)) / N per scenario, less the empty loop's; encoding is divided by the batch's spans."""
    hop_loop = importlib.import_module("benchmarks.instructions.hop_loop")
    batch = hop_loop.ENCODE_BATCH
    # start-up, then per scenario: its N phase, its 2N phase, the stretch to the next scenario
    dumps = [999, 1_000, 1_100, 50, 5_000, 9_000, 70, 7_000, 7_000 + 10 * (100 * batch + 10)]
    figures = instructions.figures_from_counts(["empty", "client_hop sampled", "encode sampled"], dumps, 10)
    assert figures == {"client_hop sampled": 390.0, "encode sampled": 100.0}
    with pytest.raises(instructions.GateError):
        instructions.figures_from_counts(["empty", "client_hop sampled"], dumps[:5], 10)


def test_callgrind_files_give_each_thread_its_count_and_its_request_labels(tmp_path: Path) -> None:
    """A thread's file yields its dump, thread number, instructions and calls of the label; a header-only file None."""
    callgrind = importlib.import_module("benchmarks.instructions.callgrind")
    body = "\n".join(
        [
            "# callgrind format",
            "version: 1",
            "pid: 4242",
            "part: 3",
            "thread: 2",
            "events: Ir",
            "summary: 123456",
            "fn=os_sched_get_priority_min",
            "cfn=sched_get_priority_min",
            "calls=7 0",
            "0 70",
            "cfn=sched_get_priority_max",
            "calls=2 0",
            "0 20",
            "totals: 123456",
        ]
    )
    (tmp_path / "callgrind.out.4242.3-02").write_text(body + "\n", encoding="utf-8")
    (tmp_path / "callgrind.out.4242").write_text("# callgrind format\nversion: 1\npid: 4242\n", encoding="utf-8")
    (count,) = callgrind.read_counts(tmp_path, 4242)
    assert (count.part, count.thread, count.instructions, count.labels) == (3, 2, 123456, 7)
