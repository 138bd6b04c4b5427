"""OpenTelemetry's OTLP/gRPC metric exporter, each attempt reported to an outage tracker (HTTP: ``metric_exporters``).

Only the observation is added (see :mod:`hoptel.export_attempts`); encoding, batching, retries and TLS stay
OpenTelemetry's.
"""

from __future__ import annotations

import functools
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as _GrpcMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

from hoptel.export_attempts import TracksGrpcOutages, tracked_export
from hoptel.metric_exporters import points_of

__all__ = ["GrpcMetricExporter"]


class GrpcMetricExporter(TracksGrpcOutages, _GrpcMetricExporter):
    """OpenTelemetry's OTLP/gRPC metric exporter, observed per attempt."""

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        """Export as OpenTelemetry does, as the tracker's export call."""
        export = functools.partial(super().export, metrics_data, timeout_millis, **kwargs)
        return tracked_export(self._outage, export, points_of(metrics_data))
