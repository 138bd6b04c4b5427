"""OpenTelemetry's OTLP/HTTP metric exporter, each attempt reported to an outage tracker (gRPC: a twin module).

Only the observation is added (see :mod:`hoptel.export_attempts`); encoding, batching, retries and TLS stay
OpenTelemetry's. A failed push loses no points: the next accepted push carries them (cumulative totals, or the
delta folded in, see :mod:`hoptel.otlp_metrics`), so the tracker's "dropped" for metrics counts failed pushes.

The gRPC twin lives apart so that an HTTP setup never imports grpc's exporter late: a module that first imports
``concurrent.futures`` after the tracer provider registered its fork handler orders that handler before the
executor's lock is reset in a forked child, and the child hangs.
"""

from __future__ import annotations

import functools
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as _HttpMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

from hoptel.export_attempts import TracksOutages, observe_http_transport, tracked_export
from hoptel.export_outage import OutageTracker

__all__ = ["HttpMetricExporter", "points_of"]


def points_of(data: MetricsData) -> int:
    """How many data points ``data`` holds (what one push sends)."""
    return sum(
        len(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )


class HttpMetricExporter(TracksOutages, _HttpMetricExporter):
    """OpenTelemetry's OTLP/HTTP metric exporter, observed per attempt."""

    def _observe_attempts(self, tracker: OutageTracker) -> bool:
        return observe_http_transport(self, tracker)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Export as OpenTelemetry does, as the tracker's export call."""
        export = functools.partial(super().export, metrics_data, timeout_millis, **kwargs)
        return tracked_export(self._outage, export, points_of(metrics_data))
