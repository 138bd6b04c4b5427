"""The instruction table's arithmetic: which threads are the request path, per-operation figures, the targets.

The table itself takes about 15 minutes under valgrind and is a benchmark, not a test; these tests check, on
made-up counts, that its figures are computed as ``benchmarks/README.md`` says.
"""

from __future__ import annotations

import importlib
import types
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``benchmarks.instructions.table`` of this checkout (benchmarks/ is not an installed package)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    return importlib.import_module("benchmarks.instructions.table")


def test_request_path_is_the_main_thread_and_the_labelled_threads_per_dump(table: types.ModuleType) -> None:
    """Per operation: (dump 3 - dump 2) / N, split between labelled threads (and thread 1) and the others."""
    callgrind = importlib.import_module("benchmarks.instructions.callgrind")
    count = callgrind.ThreadCount
    counts = [
        count(part=2, thread=1, instructions=1_000, labels=0),  # the client: request path without labels
        count(part=2, thread=3, instructions=500, labels=10),  # a handler thread
        count(part=2, thread=4, instructions=300, labels=0),  # the exporter
        count(part=3, thread=1, instructions=2_000, labels=0),
        count(part=3, thread=3, instructions=1_100, labels=20),
        count(part=3, thread=4, instructions=700, labels=0),
        count(part=3, thread=5, instructions=100, labels=0),  # a thread that appeared only in the second phase
        count(part=4, thread=1, instructions=99_999, labels=0),  # shutting down: not counted
    ]
    request, background, labels = table.per_op(counts, 2, 3, 10)
    assert (request, background, labels) == (160.0, 50.0, 1.0)


def test_a_thread_is_request_path_only_in_the_phases_where_it_served(table: types.ModuleType) -> None:
    """A thread labelled in one dump and idle (unlabelled) in the other counts as background there."""
    callgrind = importlib.import_module("benchmarks.instructions.callgrind")
    count = callgrind.ThreadCount
    counts = [count(2, 1, 100, 0), count(2, 6, 40, 0), count(3, 1, 200, 0), count(3, 6, 90, 5)]
    assert table.per_op(counts, 2, 3, 10) == (19.0, -4.0, 0.5)


def _runs(table: types.ModuleType, key: str, figures: dict[str, tuple[float, ...]]) -> list[object]:
    runs = []
    for variant, values in figures.items():
        for rep, request in enumerate(values):
            runs.append(table.Counted(key, variant, rep, 100, request, 1_000.0, 2.0, 2.0, 1.0))
    return runs


def test_added_is_paired_by_repetition_and_the_targets_use_it(table: types.ModuleType) -> None:
    """Added 10 k against the official stack's 200 k is 0.05 x, met; W5's 70 k is over its 60 k: not met."""
    report = importlib.import_module("benchmarks.instructions.report")
    runs = _runs(table, "W1", {"bare": (500e3, 510e3), "hoptel": (508e3, 522e3), "official": (700e3, 710e3)})
    runs += _runs(table, "W5", {"bare": (500e3,), "hoptel": (570e3,)})
    targets = {t.target.split(":")[0]: t for t in report.evaluate_targets(runs)}
    assert targets["W1"].measured == "0.050 x"
    assert targets["W1"].met is True
    assert targets["W2"].met is None
    assert targets["W5"].met is False
    assert targets["W5"].measured.startswith("70.0 k")

    cheaper = _runs(table, "W5", {"bare": (500e3,), "hoptel": (559e3,)})
    (w5,) = [t for t in report.evaluate_targets(cheaper) if t.target.startswith("W5")]
    assert w5.met is True


def test_the_markdown_has_a_row_per_variant_with_the_spread_of_added(table: types.ModuleType) -> None:
    """Each workload and variant is one row; hoptel's added shows its mean and half its range over repetitions."""
    report = importlib.import_module("benchmarks.instructions.report")
    machine = importlib.import_module("benchmarks.overhead.machine").Machine(
        "2026-01-01 00:00 UTC", "cpu", 2, 2, "linux", "CPython 3.11.7", (0.0, 0.0, 0.0), "abc1234"
    )
    runs = _runs(table, "W1", {"bare": (500e3, 510e3), "hoptel": (508e3, 522e3), "official": (700e3, 710e3)})
    text = report.render_markdown(runs, machine, command="python -m benchmarks.instructions", n=100, reps=2, minutes=1)
    rows = [line for line in text.splitlines() if line.startswith("| W1 ")]
    assert [row.split("|")[2].strip() for row in rows] == ["bare", "hoptel", "official"]
    assert "| +10.0 k ± 2.0 | 0.050 |" in rows[1]
    assert "hoptel commit: abc1234" in text


def test_the_main_thread_share_is_its_own_difference_and_w4_client_ratio_uses_it(table: types.ModuleType) -> None:
    """The client's share is thread 1's (dump 3 - dump 2) / N; W4's client target compares those shares."""
    callgrind = importlib.import_module("benchmarks.instructions.callgrind")
    report = importlib.import_module("benchmarks.instructions.report")
    count = callgrind.ThreadCount
    counts = [count(2, 1, 1_000, 0), count(2, 3, 5_000, 10), count(3, 1, 1_800, 0), count(3, 3, 9_000, 20)]
    assert table.main_thread_per_op(counts, 2, 3, 10) == 80.0
    runs = [
        table.Counted("W4", "bare", 0, 100, 900e3, 0.0, 1.0, 0.0, 1.0, main=400e3),
        table.Counted("W4", "hoptel", 0, 100, 1_000e3, 0.0, 1.0, 2.0, 1.0, main=420e3),
        table.Counted("W4", "official", 0, 100, 2_000e3, 0.0, 1.0, 4.0, 1.0, main=800e3),
    ]
    (w4,) = [t for t in report.evaluate_targets(runs) if t.target.startswith("W4")]
    assert (w4.measured, w4.met) == ("0.050 x", True)
