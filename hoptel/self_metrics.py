"""hoptel's own health metrics: what the pipelines (spans, logs, metric push) exported, dropped and failed to send."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.registry import CollectorRegistry

from hoptel.metrics import Counter, CounterChild, Gauge

__all__ = ["SelfMetrics"]


class SelfMetrics:
    """The ``hoptel_*`` series in one Telemetry's registry."""

    def __init__(self, registry: CollectorRegistry, queue_length: Callable[[], int]) -> None:
        def counter(name: str, documentation: str) -> CounterChild:
            return Counter(name, documentation, (), registry).labels()

        self.spans_exported = counter("hoptel_spans_exported_total", "Spans the exporter accepted.")
        self.spans_dropped = counter(
            "hoptel_spans_dropped_total",
            "Sampled spans lost: the export queue was full, their export failed, or they ended after shutdown().",
        )
        self.export_failures = counter(
            "hoptel_export_failures_total", "Span export calls that failed after the exporter's retries."
        )
        self.export_attempt_failures = Counter(
            "hoptel_export_attempt_failures_total",
            "OTLP export attempts that failed, retries included, counted as each one fails (by signal).",
            ("signal",),
            registry,
        )
        self.log_records_dropped = counter(
            "hoptel_log_records_dropped_total", "Log records dropped because the log queue was full."
        )
        self.metric_exports = counter("hoptel_metric_exports_total", "OTLP metric pushes the collector accepted.")
        self.metric_export_failures = counter(
            "hoptel_metric_export_failures_total",
            "OTLP metric pushes that failed after the exporter's retries (refused, timed out, unreachable).",
        )
        self.hook_errors = counter("hoptel_hook_errors_total", "Exceptions raised by user hooks (the call went on).")
        Gauge("hoptel_span_queue_length", "Spans waiting in the export queue.", queue_length, registry)
