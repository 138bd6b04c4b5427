"""Builds the OTLP (gRPC or HTTP/protobuf) and console exporters from validated configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from hoptel.config import ExporterConfig

if TYPE_CHECKING:
    from opentelemetry.sdk._logs.export import LogRecordExporter

__all__ = ["build_log_exporter", "build_span_exporter"]


def build_span_exporter(kind: str, settings: ExporterConfig | None, export_timeout_s: float) -> SpanExporter | None:
    """The span exporter for ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or ``none``)."""
    if kind == "none" or settings is None:
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    timeout = min(settings.timeout_s, export_timeout_s)
    if settings.protocol == "grpc":
        import grpc

        from hoptel.hop_exporters import GrpcHopSpanExporter

        return GrpcHopSpanExporter(
            endpoint=settings.endpoint,
            insecure=settings.insecure,
            headers=settings.headers or None,
            timeout=timeout,
            compression=grpc.Compression.Gzip if settings.compression == "gzip" else None,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression

    from hoptel.hop_exporters import HttpHopSpanExporter

    return HttpHopSpanExporter(
        endpoint=settings.endpoint,
        headers=dict(settings.headers) or None,
        timeout=timeout,
        compression=Compression.Gzip if settings.compression == "gzip" else Compression.NoCompression,
    )


def build_log_exporter(kind: str, settings: ExporterConfig | None) -> LogRecordExporter | None:
    """The OTLP log exporter for ``OTEL_LOGS_EXPORTER=otlp``; None otherwise (stdout logs need none).

    OpenTelemetry's exporters, with each attempt observable for an outage tracker (``hoptel.export_attempts``).
    """
    if kind != "otlp" or settings is None:
        return None
    if settings.protocol == "grpc":
        import grpc

        from hoptel.log_exporters import GrpcLogExporter

        return GrpcLogExporter(
            endpoint=settings.endpoint,
            insecure=settings.insecure,
            headers=settings.headers or None,
            timeout=settings.timeout_s,
            compression=grpc.Compression.Gzip if settings.compression == "gzip" else None,
        )
    from opentelemetry.exporter.otlp.proto.http import Compression

    from hoptel.log_exporters import HttpLogExporter

    return HttpLogExporter(
        endpoint=settings.endpoint,
        headers=dict(settings.headers) or None,
        timeout=settings.timeout_s,
        compression=Compression.Gzip if settings.compression == "gzip" else Compression.NoCompression,
    )
