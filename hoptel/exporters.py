"""Builds the OTLP (gRPC or HTTP/protobuf) and console exporters from validated configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from hoptel.config import ExporterConfig

if TYPE_CHECKING:
    from hoptel.otel_internals import LogRecordExporter

__all__ = ["build_log_exporter", "build_span_exporter", "otlp_options"]


def otlp_options(settings: ExporterConfig, timeout_s: float) -> dict[str, Any]:
    """The keyword arguments of OpenTelemetry's OTLP exporters (gRPC or HTTP/protobuf, per ``settings.protocol``).

    The same for spans, logs and metrics: endpoint, headers, ``timeout_s`` and compression (and, for gRPC, insecure).
    """
    if settings.protocol == "grpc":
        import grpc

        return {
            "endpoint": settings.endpoint,
            "insecure": settings.insecure,
            "headers": settings.headers or None,
            "timeout": timeout_s,
            "compression": grpc.Compression.Gzip if settings.compression == "gzip" else None,
        }
    from opentelemetry.exporter.otlp.proto.http import Compression

    return {
        "endpoint": settings.endpoint,
        "headers": dict(settings.headers) or None,
        "timeout": timeout_s,
        "compression": Compression.Gzip if settings.compression == "gzip" else Compression.NoCompression,
    }


def build_span_exporter(kind: str, settings: ExporterConfig | None, export_timeout_s: float) -> SpanExporter | None:
    """The span exporter for ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or ``none``)."""
    if kind == "none" or settings is None:
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    from hoptel.hop_exporters import GrpcHopSpanExporter, HttpHopSpanExporter

    options = otlp_options(settings, min(settings.timeout_s, export_timeout_s))
    if settings.protocol == "grpc":
        return GrpcHopSpanExporter(**options)
    return HttpHopSpanExporter(**options)


def build_log_exporter(kind: str, settings: ExporterConfig | None) -> LogRecordExporter | None:
    """The OTLP log exporter for ``OTEL_LOGS_EXPORTER=otlp``; None otherwise (stdout logs need none).

    OpenTelemetry's exporters, with each attempt observable for an outage tracker (``hoptel.export_attempts``).
    """
    if kind != "otlp" or settings is None:
        return None
    from hoptel.log_exporters import GrpcLogExporter, HttpLogExporter

    options = otlp_options(settings, settings.timeout_s)
    if settings.protocol == "grpc":
        return GrpcLogExporter(**options)
    return HttpLogExporter(**options)
