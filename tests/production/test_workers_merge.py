"""Merging worker states: counters summed, histograms bucket by bucket, the latest exemplar per bucket, safe parsing."""

from __future__ import annotations

import json
import pickle

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from hoptel.metrics import Counter, Gauge, Histogram
from hoptel.worker_merge import merge_states, render
from hoptel.worker_state import (
    ExemplarState,
    FamilyState,
    SampleState,
    StateError,
    WorkerState,
    decode,
    encode,
    snapshot,
)

TRACE_A = "0af7651916cd43dd8448eb211c80319c"
TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736"


class _Rendered:
    """A collector serving already merged families, so the prometheus_client encoders can render them."""

    def __init__(self, families: tuple[FamilyState, ...]) -> None:
        self._families = families

    def collect(self) -> list[object]:
        return list(render(self._families))


def _merged_text(*registries: CollectorRegistry, openmetrics: bool = False) -> str:
    states = [decode(encode(snapshot(registry, pid=index + 1))) for index, registry in enumerate(registries)]
    encoder = generate_openmetrics if openmetrics else generate_latest
    return encoder(_Rendered(merge_states(states))).decode()  # type: ignore[arg-type]  # a duck-typed collector


def _registry(observations: list[float], calls: float = 0.0, queue: float = 0.0) -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("demo_calls_total", "Calls.", ("method",), registry).labels("Get").inc(calls)
    histogram = Histogram("demo_latency_seconds", "Latency.", ("method",), registry).labels("Get")
    for value in observations:
        histogram.observe(value)
    Gauge("demo_queue_length", "Queued.", lambda: queue, registry)
    return registry


def _lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_counters_are_summed_across_workers() -> None:
    """The same counter series of two workers is served as their sum."""
    text = _merged_text(_registry([], calls=3), _registry([], calls=4))
    assert 'demo_calls_total{method="Get"} 7.0' in text


def test_histograms_merge_bucket_by_bucket_like_one_process() -> None:
    """Two workers' histograms merge into exactly what one process observing everything would serve."""
    first, second = [0.0003, 0.0003, 0.2], [0.002, 0.0003, 12.0]
    merged = _merged_text(_registry(first), _registry(second))
    alone = generate_latest(_registry(first + second)).decode()
    assert _lines(merged, "demo_latency_seconds") == _lines(alone, "demo_latency_seconds")
    assert 'demo_latency_seconds_bucket{le="0.0005",method="Get"} 3.0' in merged
    assert 'demo_latency_seconds_count{method="Get"} 6.0' in merged


def test_gauges_are_summed() -> None:
    """A gauge (such as hoptel_span_queue_length) is served as the sum over the workers."""
    text = _merged_text(_registry([], queue=2), _registry([], queue=5))
    assert "demo_queue_length 7.0" in text


def test_a_series_of_one_worker_only_is_kept() -> None:
    """Label values seen by one worker alone are served as that worker has them."""
    first, second = CollectorRegistry(), CollectorRegistry()
    Counter("demo_calls_total", "Calls.", ("method",), first).labels("Get").inc(2)
    Counter("demo_calls_total", "Calls.", ("method",), second).labels("Put").inc(5)
    text = _merged_text(first, second)
    assert 'demo_calls_total{method="Get"} 2.0' in text
    assert 'demo_calls_total{method="Put"} 5.0' in text


def test_exemplars_survive_the_merge_in_openmetrics() -> None:
    """An exemplar recorded by either worker is served in OpenMetrics on its bucket after the merge."""
    first, second = CollectorRegistry(), CollectorRegistry()
    Histogram("demo_latency_seconds", "Latency.", (), first).labels().observe(0.0003, TRACE_A)
    Histogram("demo_latency_seconds", "Latency.", (), second).labels().observe(0.2, TRACE_B)
    text = _merged_text(first, second, openmetrics=True)
    assert f'demo_latency_seconds_bucket{{le="0.0005"}} 1.0 # {{trace_id="{TRACE_A}"}} 0.0003 ' in text
    assert f'demo_latency_seconds_bucket{{le="0.25"}} 2.0 # {{trace_id="{TRACE_B}"}} 0.2 ' in text


def test_the_latest_exemplar_of_a_bucket_wins() -> None:
    """Two workers with an exemplar in the same bucket: the one recorded last is kept, whichever worker it was."""

    def state(pid: int, trace_id: str, at: float) -> WorkerState:
        exemplar = ExemplarState((("trace_id", trace_id),), 0.0003, at)
        sample = SampleState("demo_latency_seconds_bucket", (("le", "0.0005"),), 1.0, exemplar)
        return WorkerState(pid, at, (FamilyState("demo_latency_seconds", "histogram", "Latency.", "", (sample,)),))

    older, newer = state(1, TRACE_A, 10.0), state(2, TRACE_B, 20.0)
    for order in ([older, newer], [newer, older]):
        (family,) = merge_states(order)
        (sample,) = family.samples
        assert sample.value == 2.0
        assert sample.exemplar is not None
        assert dict(sample.exemplar.labels) == {"trace_id": TRACE_B}


def test_a_family_whose_type_differs_keeps_the_first_type() -> None:
    """Conflicting types of one family name never break the merge: the first type is served, the rest left out."""
    counter = FamilyState("demo", "counter", "D.", "", (SampleState("demo_total", (), 1.0),))
    gauge = FamilyState("demo", "gauge", "D.", "", (SampleState("demo", (), 9.0),))
    (family,) = merge_states([WorkerState(1, 0.0, (counter,)), WorkerState(2, 0.0, (gauge,))])
    assert family.type == "counter"
    assert [(s.name, s.value) for s in family.samples] == [("demo_total", 1.0)]


def test_state_round_trips_through_json() -> None:
    """encode() then decode() gives the same state, exemplars and non-finite bounds included."""
    registry = _registry([0.0003, 20.0], calls=1)
    Histogram("demo_other_seconds", "Other.", (), registry).labels().observe(0.001, TRACE_A)
    state = snapshot(registry, pid=42)
    assert decode(encode(state)) == state


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        encode(snapshot(_registry([0.1], calls=2)))[:-7],  # truncated
        b"\xff\xfe not utf-8",
        b"[]",
        json.dumps({"format": "other/1", "pid": 1, "written": 0, "families": []}).encode(),
        json.dumps({"format": "hoptel-worker-state/1", "pid": "1", "written": 0, "families": []}).encode(),
        json.dumps({"format": "hoptel-worker-state/1", "pid": 1, "written": 0, "families": [{"name": 3}]}).encode(),
        json.dumps(
            {
                "format": "hoptel-worker-state/1",
                "pid": 1,
                "written": 0,
                "families": [
                    {"name": "x", "type": "counter", "help": "", "unit": "", "samples": [["x", {}, "1", None]]}
                ],
            }
        ).encode(),
        pickle.dumps({"format": "hoptel-worker-state/1"}),
    ],
    ids=[
        *("empty", "cut-json", "truncated", "not-utf8", "not-object"),
        *("format", "pid-type", "name-type", "value", "pickle"),
    ],
)
def test_a_damaged_state_file_is_a_state_error(data: bytes) -> None:
    """Anything but a well-formed state document raises StateError (a ValueError), never something else."""
    with pytest.raises(StateError):
        decode(data)
