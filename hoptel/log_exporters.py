"""OpenTelemetry's OTLP log exporters (gRPC and HTTP/protobuf), each attempt reported to an outage tracker.

Only the observation is added (see :mod:`hoptel.export_attempts`); encoding, retries and TLS stay OpenTelemetry's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from hoptel.export_attempts import (
    TracksGrpcOutages,
    TracksOutages,
    observe_http_transport,
    tracked_export,
)
from hoptel.export_outage import OutageTracker
from hoptel.otel_internals import LogRecordExportResult, ReadableLogRecord
from hoptel.otel_internals import OTLPGrpcLogExporter as _GrpcLogExporter
from hoptel.otel_internals import OTLPHttpLogExporter as _HttpLogExporter

__all__ = ["GrpcLogExporter", "HttpLogExporter"]


class GrpcLogExporter(TracksGrpcOutages, _GrpcLogExporter):
    """OpenTelemetry's OTLP/gRPC log exporter, observed per attempt."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> Any:
        """Export as OpenTelemetry does, as the tracker's export call."""
        return tracked_export(self._outage, functools.partial(super().export, batch), len(batch))


class HttpLogExporter(TracksOutages, _HttpLogExporter):
    """OpenTelemetry's OTLP/HTTP log exporter, observed per attempt."""

    def _observe_attempts(self, tracker: OutageTracker) -> bool:
        return observe_http_transport(self, tracker)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export as OpenTelemetry does, as the tracker's export call."""
        return tracked_export(self._outage, functools.partial(super().export, batch), len(batch))
