"""benchmarks/memory: one small run of the whole command measures real spans, series, held RPCs and RSS readings.

No timing is checked, and the memory figures only against generous bounds: what must hold is that each figure
counts what it says (two queued spans per sampled RPC, ten label sets per new method, every span reaching the
receiver, one RSS reading per step) and lands in a plausible range, so a broken harness cannot print nonsense.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.memory.rss import drift

REPO_ROOT = Path(__file__).resolve().parents[2]
RPCS, SAMPLE_EVERY, WARMUP, SPAN_RPCS = 2000, 500, 200, 200


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON of ``python -m benchmarks.memory`` with small sizes and every RPC sampled."""
    output = tmp_path_factory.mktemp("memory") / "memory.md"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.memory", "--reps", "1", "--ratio", "1.0"),
            *("--rpcs", str(RPCS), "--sample-every", str(SAMPLE_EVERY), "--warmup", str(WARMUP)),
            *("--spans-rpcs", str(SPAN_RPCS), "--methods", "50", "--held", "20", "--output", str(output)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert output.read_text(encoding="utf-8") == result.stdout
    data: dict[str, Any] = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    return data


@pytest.mark.slow
def test_queued_spans_are_two_per_rpc_and_cost_a_plausible_size(report: dict[str, Any]) -> None:
    spans = report["queued_spans"]
    assert spans["spans_first"] == spans["spans_second"] == 2 * SPAN_RPCS  # a CLIENT and a SERVER span each
    assert 0 < spans["bytes_per_span"] < 20_000


@pytest.mark.slow
def test_finished_unsampled_rpcs_leave_next_to_nothing_on_the_heap(report: dict[str, Any]) -> None:
    kept = report["retained"]
    assert kept["rpcs"] == SPAN_RPCS
    assert kept["bytes_per_rpc"] < 500  # a span or a series kept per RPC would be hundreds of bytes each


@pytest.mark.slow
def test_each_new_method_adds_ten_label_sets_and_a_plausible_size(report: dict[str, Any]) -> None:
    series = report["metric_series"]
    # started, handled, msg_received, msg_sent and the latency histogram, on the server and on the client
    assert series["label_sets_per_method"] == 10
    assert series["lines_per_method"] > series["label_sets_per_method"]  # the histogram's buckets
    assert 0 < series["hoptel_server"] < 100_000
    assert 0 < series["hoptel_both"] < 200_000
    assert abs(series["bare"]) < series["hoptel_server"]  # grpc alone keeps next to nothing per method


@pytest.mark.slow
def test_in_flight_rpcs_hold_hoptel_state_of_a_plausible_size(report: dict[str, Any]) -> None:
    held = report["in_flight"]
    assert held["rpcs"] == 20
    assert held["bare"] > 0  # the held calls themselves are seen
    assert 0 < held["hoptel_both"] < 50_000


@pytest.mark.slow
def test_rss_is_read_at_every_step_and_every_span_arrives(report: dict[str, Any]) -> None:
    run = report["rss"]
    assert [s["rpcs"] for s in run["samples"]] == list(range(0, RPCS + 1, SAMPLE_EVERY))
    for sample in run["samples"]:
        for process in ("client_kib", "server_kib", "receiver_kib"):
            assert 10_000 < sample[process] < 4_000_000  # a Python process with grpc: tens of MiB, not nothing
    assert run["spans_received"] == 2 * (RPCS + WARMUP)  # sampled at 1.0: the load is real and instrumented
    assert run["client"]["first_mib"] == run["samples"][0]["client_kib"] / 1024
    assert run["flat_within_mib"] >= 0


def test_drift_is_measured_from_the_first_reading() -> None:
    d = drift([1024, 3072, 512, 2048])
    assert (d.first_mib, d.last_mib, d.last_minus_first_mib) == (1.0, 2.0, 1.0)
    assert (d.max_abs_from_first_mib, d.min_mib, d.max_mib) == (2.0, 0.5, 3.0)
