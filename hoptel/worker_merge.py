"""Merging the metric states of several worker processes into one, and rendering it for the metrics endpoint.

The rules, per sample (a family's name, its sample name and its label values identify a sample):

- counters, histograms, summaries and untyped samples are **summed**. A histogram's ``_bucket`` samples are
  cumulative, and a sum of cumulative counts is the cumulative count of the summed buckets, so histograms are
  merged bucket by bucket (for the same bucket bounds, which every hoptel process of a service has); ``_count`` and
  ``_sum`` are summed alike.
- gauges are **summed** too: ``hoptel_span_queue_length`` of a group is the spans queued in all its processes.
- ``_created`` samples take the earliest value (they are timestamps); info and stateset samples take the first.
- the **exemplar** of a sample is the latest one (by its timestamp) among the processes that have one, so the
  trace of the last sampled observation in a bucket is kept whichever process recorded it.

A family whose type differs between processes keeps the type seen first; the other samples are left out.

>>> from hoptel.worker_state import FamilyState, SampleState, WorkerState
>>> one = FamilyState("calls", "counter", "Calls.", "", (SampleState("calls_total", (), 2.0),))
>>> two = FamilyState("calls", "counter", "Calls.", "", (SampleState("calls_total", (), 3.0),))
>>> merged = merge_states([WorkerState(1, 0.0, (one,)), WorkerState(2, 0.0, (two,))])
>>> merged[0].samples[0].value
5.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar, Sample

from hoptel.worker_state import ExemplarState, FamilyState, Labels, SampleState, WorkerState

__all__ = ["merge_families", "merge_states", "render"]

_FIRST_WINS = {"info", "stateset"}

SampleKey = tuple[str, Labels]


class _Merged:
    """One family being merged: its identity, and its samples in first-seen order."""

    __slots__ = ("documentation", "name", "samples", "type", "unit")

    def __init__(self, family: FamilyState) -> None:
        self.name = family.name
        self.type = family.type
        self.documentation = family.documentation
        self.unit = family.unit
        self.samples: dict[SampleKey, SampleState] = {}

    def add(self, samples: Iterable[SampleState]) -> None:
        for sample in samples:
            key = (sample.name, sample.labels)
            seen = self.samples.get(key)
            self.samples[key] = sample if seen is None else self._combine(seen, sample)

    def _combine(self, seen: SampleState, new: SampleState) -> SampleState:
        if self.type in _FIRST_WINS:
            return seen
        value = min(seen.value, new.value) if seen.name.endswith("_created") else seen.value + new.value
        return SampleState(seen.name, seen.labels, value, _latest(seen.exemplar, new.exemplar))

    def state(self) -> FamilyState:
        return FamilyState(self.name, self.type, self.documentation, self.unit, tuple(self.samples.values()))


def _latest(first: ExemplarState | None, second: ExemplarState | None) -> ExemplarState | None:
    if first is None:
        return second
    if second is None:
        return first
    return second if (second.timestamp or 0.0) > (first.timestamp or 0.0) else first


def merge_families(groups: Iterable[Sequence[FamilyState]]) -> tuple[FamilyState, ...]:
    """Merge several processes' families (one sequence per process) by the rules above."""
    merged: dict[str, _Merged] = {}
    for families in groups:
        for family in families:
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = _Merged(family)
            elif target.type != family.type:
                continue
            target.add(family.samples)
    return tuple(target.state() for target in merged.values())


def merge_states(states: Iterable[WorkerState]) -> tuple[FamilyState, ...]:
    """Merge whole worker states (see :func:`merge_families`)."""
    return merge_families(state.families for state in states)


def render(families: Iterable[FamilyState]) -> list[Metric]:
    """prometheus_client metric families for the exposition encoders (text and OpenMetrics)."""
    metrics = []
    for family in families:
        metric = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            exemplar = None
            if sample.exemplar is not None:
                exemplar = Exemplar(dict(sample.exemplar.labels), sample.exemplar.value, sample.exemplar.timestamp)
            metric.samples.append(Sample(sample.name, dict(sample.labels), sample.value, None, exemplar))
        metrics.append(metric)
    return metrics
