"""A compact view of received histograms: per series (name and attributes), the count and p50/p99.

A series gathers every point with the same name and attributes across the processes that sent it: cumulative
points count once per process (its latest point), delta points are added up. Percentiles are estimated from
the merged buckets (``ReceivedMetric.quantile``).

>>> print(format_metrics([ReceivedMetric("http.server.request.duration", "s", "histogram", "cumulative",
...     {"http.route": "/cart"}, count=2, bucket_counts=(2, 0), explicit_bounds=(0.01,))]))
http.server.request.duration{http.route=/cart}  count=2  p50=5.00ms  p99=9.90ms
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from hoptel.receiver.metrics import ReceivedMetric

__all__ = ["MetricSeries", "format_metrics", "summarize_metrics"]


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """One histogram series merged over the points and processes that sent it.

    Attributes:
        name: The metric name.
        unit: Its unit.
        attributes: The series' attributes.
        instances: How many processes (``service.instance.id``) sent it.
        merged: One point holding the merged counts (``quantile()`` works on it).
    """

    name: str
    unit: str
    attributes: dict[str, Any] = field(hash=False)
    instances: int
    merged: ReceivedMetric

    @property
    def count(self) -> int:
        """Observations in the series."""
        return sum(self.merged.bucket_counts)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile estimated from the merged buckets."""
        return self.merged.quantile(q)


def _add(a: ReceivedMetric, b: ReceivedMetric) -> ReceivedMetric:
    if a.explicit_bounds != b.explicit_bounds:  # different buckets cannot be merged: the later wins
        return b
    counts = tuple(x + y for x, y in zip(a.bucket_counts, b.bucket_counts, strict=True))
    return replace(a, bucket_counts=counts, count=a.count + b.count, sum=a.sum + b.sum)


def summarize_metrics(points: Iterable[ReceivedMetric]) -> list[MetricSeries]:
    """The histogram series in ``points``, sorted by name then attributes."""
    latest: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, ReceivedMetric]] = {}
    deltas: dict[tuple[str, str, tuple[tuple[str, str], ...]], dict[str, ReceivedMetric]] = {}
    for point in points:
        if point.kind != "histogram":
            continue
        key = (point.name, point.unit, tuple(sorted((k, str(v)) for k, v in point.attributes.items())))
        instance = point.instance_id
        if point.temporality == "delta":
            per_instance = deltas.setdefault(key, {})
            seen = per_instance.get(instance)
            per_instance[instance] = point if seen is None else _add(seen, point)
        else:
            per_instance = latest.setdefault(key, {})
            seen = per_instance.get(instance)
            if seen is None or point.time_ns >= seen.time_ns:
                per_instance[instance] = point
    series = []
    for key in sorted({*latest, *deltas}):
        merged_points = [*latest.get(key, {}).values(), *deltas.get(key, {}).values()]
        merged = merged_points[0]
        for point in merged_points[1:]:
            merged = _add(merged, point)
        instances = {*latest.get(key, {}), *deltas.get(key, {})}
        series.append(MetricSeries(key[0], key[1], dict(merged.attributes), len(instances), merged))
    return series


def _duration(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:.2f}ms"
    return f"{value:.4g}{unit}"


def format_metrics(points: Iterable[ReceivedMetric]) -> str:
    """One line per histogram series: ``name{attributes}  count=N  p50=…  p99=…`` (and the process count if > 1)."""
    lines = []
    for entry in summarize_metrics(points):
        shown = ",".join(f"{k}={v}" for k, v in sorted(entry.attributes.items()))
        line = (
            f"{entry.name}{{{shown}}}  count={entry.count}  p50={_duration(entry.quantile(0.5), entry.unit)}"
            f"  p99={_duration(entry.quantile(0.99), entry.unit)}"
        )
        if entry.instances > 1:
            line += f"  processes={entry.instances}"
        lines.append(line)
    return "\n".join(lines)
