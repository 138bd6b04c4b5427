"""The OTLP span exporters with hoptel's fast encoding: OTel's transport, retries and TLS, hoptel's bytes.

Each subclass replaces only the step that turns a batch into a request; connection handling, headers,
compression, the OTLP retry rules and shutdown stay OpenTelemetry's. Both report each attempt to an outage
tracker (``track_outages``, see ``hoptel.export_attempts``). Both rely on one private hook of their base
class (named below); ``hoptel.telemetry`` only uses hop spans when ``accepts_hop_spans`` is true.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as _GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from hoptel.background import on_fork
from hoptel.export_attempts import (
    TracksGrpcOutages,
    TracksOutages,
    observe_http_transport,
    tracked_export,
)
from hoptel.export_outage import OutageTracker
from hoptel.otel_internals import GRPC_EXPORTER_REQUEST_HOOK, exporter_client
from hoptel.otlp_wire import HopSpanEncoder

__all__ = ["GrpcHopSpanExporter", "HopSpanExporter", "HttpHopSpanExporter"]


class HopSpanExporter:
    """What the fast path needs of an exporter: a resource to encode hop spans with."""

    accepts_hop_spans = False
    _encoder: HopSpanEncoder | None = None
    _resource: Resource | None = None

    def set_resource(self, resource: Resource) -> None:
        """Encode hop spans with this resource (the tracer provider's).

        The encoder holds the resource already encoded; in a process forked later it encodes it again, since the
        child's resource carries the child's own ``service.instance.id`` (see ``hoptel.resource``).
        """
        if self._resource is None:
            on_fork(self, after_in_child=HopSpanExporter._reencode)
        self._resource = resource
        self._encoder = HopSpanEncoder(resource)

    def _reencode(self) -> None:
        if self._resource is not None:
            self._encoder = HopSpanEncoder(self._resource)


class GrpcHopSpanExporter(TracksGrpcOutages, HopSpanExporter, _GrpcSpanExporter):
    """OTLP/gRPC; overrides ``_translate_data`` (the base exporter's per-attempt request builder).

    Each attempt is reported to the outage tracker, if any (see ``hoptel.export_attempts``).
    """

    accepts_hop_spans = hasattr(_GrpcSpanExporter, GRPC_EXPORTER_REQUEST_HOOK)  # see hoptel.otel_internals

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export as OpenTelemetry does, as the tracker's export call."""
        return tracked_export(self._outage, functools.partial(super().export, spans), len(spans))

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        encoder = self._encoder
        if encoder is None:
            return super()._translate_data(data)
        return ExportTraceServiceRequest.FromString(encoder.encode(data))


class HttpHopSpanExporter(TracksOutages, HopSpanExporter, _HttpSpanExporter):
    """OTLP/HTTP; overrides ``export`` and sends through the base exporter's ``_client`` (its retrying transport).

    Each attempt is reported to the outage tracker, if any (see ``hoptel.export_attempts``).
    """

    accepts_hop_spans = True

    def _observe_attempts(self, tracker: OutageTracker) -> bool:
        return observe_http_transport(self, tracker)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode the batch and send it; FAILURE after the transport's retries."""
        return tracked_export(self._outage, functools.partial(self._export_encoded, spans), len(spans))

    def _export_encoded(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = exporter_client(self)  # the base exporter's retrying client (private: see hoptel.otel_internals)
        encoder = self._encoder
        if encoder is None or client is None or not hasattr(client, "export"):
            return super().export(spans)
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            body = encoder.encode(spans)
        except Exception:
            return SpanExportResult.FAILURE
        result = client.export(body)
        return SpanExportResult.SUCCESS if getattr(result, "success", False) else SpanExportResult.FAILURE
