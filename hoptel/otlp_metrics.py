"""hoptel's latency histograms as OTLP metrics: converted from the registry at export time, never recorded twice.

A hop observes one ``hoptel.metrics`` histogram series (Prometheus names, go-grpc-middleware labels). At each push
``MetricConverter`` collects the Telemetry's registry, as a scrape does, and turns the four duration families into
OpenTelemetry metrics with semantic-convention names, unit ``s`` and attributes:

- ``grpc_server_handling_seconds`` -> ``rpc.server.call.duration`` (rpc.system, rpc.service, rpc.method and the
  status code: below; one series per code, read from the family's per-code parts, ``hoptel.coded_histogram``)
- ``grpc_client_handling_seconds`` -> ``rpc.client.call.duration`` (the same)
- ``http_server_request_duration_seconds`` -> ``http.server.request.duration`` (http.request.method, http.route,
  http.response.status_code, error.type for a 5xx)
- ``http_client_request_duration_seconds`` -> ``http.client.request.duration`` (http.request.method,
  server.address, http.response.status_code, error.type)

The gRPC attributes follow ``OTEL_SEMCONV_STABILITY_OPT_IN`` as the spans do: by default ``rpc.system=grpc``,
``rpc.service``, ``rpc.method`` and ``rpc.grpc.status_code`` (int); with ``rpc`` the release-candidate
``rpc.system.name=grpc``, the fully qualified ``rpc.method``, ``rpc.status_code`` (the code's name) and ``error.type``
for an error status; ``rpc/dup`` both. Extra labels (``extra_labels=``) are passed on under their own names.

Temporality: cumulative points carry the totals since the series' process began (``start_time``); delta points
carry the difference against the last snapshot that was *successfully* exported, kept per series, so a failed
push is folded into the next one instead of being lost. Exemplars (trace and span id of a sampled observation,
see ``hoptel.metrics.ExemplarLabels``) go with every point that still has them; a delta point only carries those
newer than the previous push; a series with nothing new since the previous push is left out of a delta push.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import Exemplar as OtelExemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.registry import Collector

from hoptel.coded_histogram import CodedPart, StatusKey, coded_parts

__all__ = ["METRIC_NAMES", "MetricConverter", "SemconvMetric"]

Attributes = dict[str, Any]
_SeriesKey = tuple[str, tuple[tuple[str, Any], ...]]


@dataclass(frozen=True, slots=True)
class SemconvMetric:
    """The OTLP name, description and attribute mapping of one Prometheus family."""

    name: str
    description: str
    attributes: Callable[[Mapping[str, str], bool, bool], Attributes]


def _extra(labels: Mapping[str, str], known: Iterable[str]) -> Attributes:
    skip = {*known, "le"}
    return {key: value for key, value in labels.items() if key not in skip}


_GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")


def _grpc_attributes(labels: Mapping[str, str], old: bool, new: bool) -> Attributes:
    service, method = labels.get("grpc_service", ""), labels.get("grpc_method", "")
    attributes: Attributes = {}
    if old:
        attributes["rpc.system"] = "grpc"
        attributes["rpc.service"] = service
        attributes["rpc.method"] = method
    if new:
        attributes["rpc.system.name"] = "grpc"
        attributes["rpc.method"] = "_OTHER" if method == "unknown" else f"{service}/{method}"
    attributes.update(_extra(labels, _GRPC_LABELS))
    return attributes


def _status(labels: Mapping[str, str], attributes: Attributes) -> int | None:
    text = labels.get("http_response_status_code", "")
    if text.isdigit():
        attributes["http.response.status_code"] = int(text)
        return int(text)
    return None


_HTTP_SERVER_LABELS = ("http_request_method", "http_route", "http_response_status_code")
_HTTP_CLIENT_LABELS = ("http_request_method", "server_address", "http_response_status_code", "error_type")


def _http_server_attributes(labels: Mapping[str, str], old: bool, new: bool) -> Attributes:
    attributes: Attributes = {"http.request.method": labels.get("http_request_method", "")}
    if labels.get("http_route"):
        attributes["http.route"] = labels["http_route"]
    status = _status(labels, attributes)
    if status is not None and status >= 500:  # what the span records as error.type for a server error
        attributes["error.type"] = str(status)
    attributes.update(_extra(labels, _HTTP_SERVER_LABELS))
    return attributes


def _http_client_attributes(labels: Mapping[str, str], old: bool, new: bool) -> Attributes:
    attributes: Attributes = {"http.request.method": labels.get("http_request_method", "")}
    if labels.get("server_address"):
        attributes["server.address"] = labels["server_address"]
    _status(labels, attributes)
    if labels.get("error_type"):
        attributes["error.type"] = labels["error_type"]
    attributes.update(_extra(labels, _HTTP_CLIENT_LABELS))
    return attributes


METRIC_NAMES: Mapping[str, SemconvMetric] = {
    "grpc_server_handling_seconds": SemconvMetric(
        "rpc.server.call.duration",
        "Measures the duration of an incoming Remote Procedure Call (RPC).",
        _grpc_attributes,
    ),
    "grpc_client_handling_seconds": SemconvMetric(
        "rpc.client.call.duration",
        "Measures the duration of an outgoing Remote Procedure Call (RPC).",
        _grpc_attributes,
    ),
    "http_server_request_duration_seconds": SemconvMetric(
        "http.server.request.duration", "Duration of HTTP server requests.", _http_server_attributes
    ),
    "http_client_request_duration_seconds": SemconvMetric(
        "http.client.request.duration", "Duration of HTTP client requests.", _http_client_attributes
    ),
}
"""Prometheus family name -> its OTLP metric."""


@dataclass(slots=True)
class _Series:
    """One OTLP series being assembled: cumulative bucket counts (``+Inf`` last), sum, exemplars."""

    attributes: Attributes
    bounds: list[float]
    cumulative: list[float]
    total: float = 0.0
    exemplars: list[OtelExemplar] | None = None


@dataclass(frozen=True, slots=True)
class _Sent:
    """What a series looked like at the last successful export (for delta)."""

    counts: tuple[int, ...]
    total: float
    at_ns: int


def _grew_from(sent: _Sent, counts: list[int], total: float) -> bool:
    """Whether a series now at ``counts``/``total`` continues from ``sent`` (no bucket went down)."""
    if len(sent.counts) != len(counts) or sent.total > total:
        return False
    return all(c >= s for c, s in zip(counts, sent.counts, strict=True))


def _exemplar(sample_exemplar: Any) -> OtelExemplar | None:
    labels = sample_exemplar.labels
    trace_hex = labels.get("trace_id")
    if not trace_hex:
        return None
    span_hex = getattr(labels, "span_id", None)
    timestamp = sample_exemplar.timestamp
    at_ns = int(float(timestamp) * 1e9) if timestamp is not None else time.time_ns()
    return OtelExemplar(
        {},
        float(sample_exemplar.value),
        at_ns,
        int(span_hex, 16) if span_hex else None,
        int(trace_hex, 16),
    )


class MetricConverter:
    """Builds OTLP ``MetricsData`` from a registry's hoptel duration histograms.

    Args:
        registry: the Telemetry's registry (collected as a scrape collects it).
        semconv_opt_in: ``OTEL_SEMCONV_STABILITY_OPT_IN``'s values (``rpc``, ``rpc/dup``).
        delta: delta temporality instead of cumulative.
    """

    def __init__(self, registry: Collector, semconv_opt_in: frozenset[str] = frozenset(), delta: bool = False) -> None:
        self._registry = registry
        self._new = "rpc" in semconv_opt_in or "rpc/dup" in semconv_opt_in
        self._old = "rpc" not in semconv_opt_in or "rpc/dup" in semconv_opt_in
        self.delta = delta
        self.reset()

    def reset(self) -> None:
        """Start over: series begin now, nothing counts as sent (also what a forked child does)."""
        self._start_ns = time.time_ns()
        self._sent: dict[_SeriesKey, _Sent] = {}
        self._pending: dict[_SeriesKey, _Sent] = {}

    def _series(self) -> dict[str, dict[_SeriesKey, _Series]]:
        """Every series of the four families, keyed by OTLP name then (name, attributes); equal keys merged."""
        found: dict[str, dict[_SeriesKey, _Series]] = {}
        for family in self._registry.collect():
            semconv = METRIC_NAMES.get(family.name)
            if semconv is None or family.type != "histogram":
                continue
            series = found.setdefault(semconv.name, {})
            parts = coded_parts(family)
            entries = self._from_samples(family, semconv) if parts is None else self._from_parts(parts, semconv)
            for entry in entries:
                key = (semconv.name, tuple(sorted(entry.attributes.items())))
                merged = series.get(key)
                if merged is None or merged.bounds != entry.bounds:
                    series[key] = entry
                    continue
                merged.cumulative = [a + b for a, b in zip(merged.cumulative, entry.cumulative, strict=True)]
                merged.total += entry.total
                if merged.exemplars is not None and entry.exemplars:
                    merged.exemplars.extend(entry.exemplars)
        return found

    def _status_attributes(self, key: StatusKey) -> Attributes:
        """What a gRPC status adds, as on spans: ``rpc.grpc.status_code``; with ``rpc`` ``rpc.status_code``."""
        attributes: Attributes = {}
        if self._old:
            attributes["rpc.grpc.status_code"] = key.number
        if self._new:
            attributes["rpc.status_code"] = key.name
            if key.failed:
                attributes["error.type"] = key.name
        return attributes

    def _from_parts(self, parts: list[CodedPart], semconv: SemconvMetric) -> list[_Series]:
        """One series per labels and status code, from a coded histogram's parts."""
        entries = []
        for labels, key, bounds, counts, total, exemplars in parts:
            attributes = semconv.attributes(labels, self._old, self._new)
            if key is not None:
                attributes.update(self._status_attributes(key))
            cumulative = list(itertools.accumulate(float(c) for c in counts))
            converted = [e for e in (_exemplar(x) for x in exemplars if x is not None) if e is not None]
            entries.append(_Series(attributes, list(bounds), cumulative, total, converted))
        return entries

    def _from_samples(self, family: Any, semconv: SemconvMetric) -> Iterable[_Series]:
        """One series per label set, from a Prometheus histogram family's samples."""
        # Samples come per label set: the buckets in order, then _count, then _sum (prometheus_client's order).
        by_labels: dict[tuple[tuple[str, str], ...], _Series] = {}
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            label_key = tuple(sorted(labels.items()))
            current = by_labels.get(label_key)
            if current is None:
                current = by_labels[label_key] = _Series(
                    semconv.attributes(labels, self._old, self._new), [], [], 0.0, []
                )
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                current.cumulative.append(float(sample.value))
                if bound != float("inf"):
                    current.bounds.append(bound)
                if sample.exemplar is not None and current.exemplars is not None:
                    converted = _exemplar(sample.exemplar)
                    if converted is not None:
                        current.exemplars.append(converted)
            elif sample.name.endswith("_sum"):
                current.total = float(sample.value)
        return by_labels.values()

    def collect(self, resource: Resource) -> MetricsData | None:
        """The points to push now, or None when there is no series yet.

        In delta mode the snapshot is remembered as pending; ``commit()`` after a successful export makes it the
        base of the next difference.
        """
        now = time.time_ns()
        metrics: list[Metric] = []
        pending: dict[_SeriesKey, _Sent] = {}
        for name, series in self._series().items():
            points = []
            for key, entry in series.items():
                counts = [int(entry.cumulative[0])] + [
                    int(b - a) for a, b in zip(entry.cumulative, entry.cumulative[1:], strict=False)
                ]
                start, total, exemplars = self._start_ns, entry.total, entry.exemplars or []
                if self.delta:
                    pending[key] = _Sent(tuple(counts), total, now)
                    sent = self._sent.get(key)
                    if sent is not None and _grew_from(sent, counts, total):  # else it started again: send it whole
                        counts = [c - s for c, s in zip(counts, sent.counts, strict=True)]
                        total -= sent.total
                        start = sent.at_ns
                        exemplars = [e for e in exemplars if e.time_unix_nano > sent.at_ns]
                    if not any(counts):  # nothing new in this series since the last push: no point, as the SDK does
                        continue
                points.append(
                    HistogramDataPoint(
                        attributes=entry.attributes,
                        start_time_unix_nano=start,
                        time_unix_nano=now,
                        count=sum(counts),
                        sum=total,
                        bucket_counts=counts,
                        explicit_bounds=entry.bounds,
                        min=None,  # type: ignore[arg-type]  # not tracked; None leaves the optional field unset
                        max=None,  # type: ignore[arg-type]  # likewise
                        exemplars=exemplars,
                    )
                )
            if points:
                semconv = next(s for s in METRIC_NAMES.values() if s.name == name)
                temporality = AggregationTemporality.DELTA if self.delta else AggregationTemporality.CUMULATIVE
                metrics.append(Metric(name, semconv.description, "s", Histogram(points, temporality)))
        self._pending = pending
        if not metrics:
            return None
        scope = ScopeMetrics(InstrumentationScope("hoptel"), metrics, "")
        return MetricsData([ResourceMetrics(resource, [scope], "")])

    def commit(self) -> None:
        """The last ``collect()`` was exported: differences are taken against it from now on (delta)."""
        self._sent.update(self._pending)
        self._pending = {}
