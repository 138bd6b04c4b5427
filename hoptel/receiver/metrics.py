"""Metric points the receiver accepted: value objects, decoding from OTLP, and quantiles estimated from buckets.

Every data point of an ``ExportMetricsServiceRequest`` becomes one ``ReceivedMetric``: histograms with their
bucket counts, bounds and exemplars, sums and gauges with their value. ``quantile()`` estimates a percentile from
the buckets the way Prometheus' ``histogram_quantile`` does (linear inside the bucket, the first bucket starting
at 0, a rank in the ``+Inf`` bucket answered with the highest finite bound).

>>> point = ReceivedMetric("rpc.server.call.duration", "s", "histogram", "cumulative", count=4,
...                        bucket_counts=(1, 2, 1), explicit_bounds=(0.001, 0.01))
>>> round(point.quantile(0.5), 6)
0.0055
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Exemplar, Metric

from hoptel.receiver.convert import attributes
from hoptel.receiver.model import Protocol

__all__ = ["MetricKind", "ReceivedExemplar", "ReceivedMetric", "Temporality", "metrics_from_request"]

MetricKind = Literal["histogram", "sum", "gauge", "other"]
"""The OTLP data types the receiver tells apart (exponential histograms and summaries are ``other``)."""

Temporality = Literal["unspecified", "delta", "cumulative"]
"""``AggregationTemporality``, lower-cased (gauges are ``unspecified``)."""

_TEMPORALITIES: tuple[Temporality, ...] = ("unspecified", "delta", "cumulative")


@dataclass(frozen=True, slots=True)
class ReceivedExemplar:
    """An exemplar of a data point: the sampled observation and the span it happened in.

    Attributes:
        value: The observed value.
        time_ns: When it was observed, nanoseconds since the Unix epoch.
        trace_id: 32 lowercase hex digits, or None.
        span_id: 16 lowercase hex digits, or None.
    """

    value: float
    time_ns: int
    trace_id: str | None
    span_id: str | None


@dataclass(frozen=True, slots=True)
class ReceivedMetric:
    """One data point of one metric, as the receiver got it.

    Attributes:
        name: The metric name, e.g. ``rpc.server.call.duration``.
        unit: Its unit, e.g. ``s``.
        kind: ``histogram``, ``sum``, ``gauge`` or ``other``.
        temporality: ``cumulative``, ``delta`` or ``unspecified``.
        attributes: The point's attributes as Python values.
        resource: The resource attributes of the sending process (``service.instance.id`` among them).
        start_ns: The point's start time (0 when absent).
        time_ns: The point's time.
        count: Observations in the point (histograms).
        sum: Their sum (histograms), or the value (sums, gauges).
        bucket_counts: Per-bucket counts, not cumulative (histograms); one more than ``explicit_bounds``.
        explicit_bounds: The finite bucket upper bounds.
        exemplars: The point's exemplars.
        protocol: ``grpc`` or ``http``.
    """

    name: str
    unit: str
    kind: MetricKind
    temporality: Temporality
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)
    resource: dict[str, Any] = field(default_factory=dict, hash=False)
    start_ns: int = 0
    time_ns: int = 0
    count: int = 0
    sum: float = 0.0
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    exemplars: tuple[ReceivedExemplar, ...] = ()
    protocol: Protocol = "grpc"

    @property
    def service_name(self) -> str:
        """The resource's ``service.name`` ("" when absent)."""
        return str(self.resource.get("service.name", ""))

    @property
    def instance_id(self) -> str:
        """The resource's ``service.instance.id`` ("" when absent)."""
        return str(self.resource.get("service.instance.id", ""))

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1) estimated from the buckets; None without observations or buckets."""
        total = sum(self.bucket_counts)
        if not total or not self.bucket_counts:
            return None
        rank = q * total
        seen = 0
        for index, count in enumerate(self.bucket_counts):
            if count and seen + count >= rank:
                if index >= len(self.explicit_bounds):  # the +Inf bucket
                    return self.explicit_bounds[-1] if self.explicit_bounds else None
                lower = self.explicit_bounds[index - 1] if index else 0.0
                upper = self.explicit_bounds[index]
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
        return self.explicit_bounds[-1] if self.explicit_bounds else None  # pragma: no cover - rank <= total


def _exemplars(raw: Iterable[Exemplar]) -> tuple[ReceivedExemplar, ...]:
    out = []
    for exemplar in raw:
        value = exemplar.as_double if exemplar.WhichOneof("value") == "as_double" else float(exemplar.as_int)
        out.append(
            ReceivedExemplar(
                value,
                exemplar.time_unix_nano,
                exemplar.trace_id.hex() or None,
                exemplar.span_id.hex() or None,
            )
        )
    return tuple(out)


def _points(metric: Metric, resource: dict[str, Any], protocol: Protocol) -> Iterable[ReceivedMetric]:
    which = metric.WhichOneof("data")
    if which == "histogram":
        temporality = _TEMPORALITIES[metric.histogram.aggregation_temporality]
        for point in metric.histogram.data_points:
            yield ReceivedMetric(
                metric.name,
                metric.unit,
                "histogram",
                temporality,
                attributes(point.attributes),
                resource,
                point.start_time_unix_nano,
                point.time_unix_nano,
                point.count,
                point.sum,
                tuple(point.bucket_counts),
                tuple(point.explicit_bounds),
                _exemplars(point.exemplars),
                protocol,
            )
    elif which in ("sum", "gauge"):
        data = metric.sum if which == "sum" else metric.gauge
        temporality = _TEMPORALITIES[metric.sum.aggregation_temporality] if which == "sum" else "unspecified"
        for number in data.data_points:
            value = number.as_double if number.WhichOneof("value") == "as_double" else float(number.as_int)
            yield ReceivedMetric(
                metric.name,
                metric.unit,
                which,
                temporality,
                attributes(number.attributes),
                resource,
                number.start_time_unix_nano,
                number.time_unix_nano,
                sum=value,
                exemplars=_exemplars(number.exemplars),
                protocol=protocol,
            )
    else:
        yield ReceivedMetric(metric.name, metric.unit, "other", "unspecified", resource=resource, protocol=protocol)


def metrics_from_request(request: ExportMetricsServiceRequest, protocol: Protocol) -> list[ReceivedMetric]:
    """Flatten an OTLP metrics export request into data points, in request order."""
    out: list[ReceivedMetric] = []
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out.extend(_points(metric, resource, protocol))
    return out
