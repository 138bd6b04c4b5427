"""A span exporter for the micro-benchmarks: encodes every batch as hoptel's OTLP exporters do, then drops it.

Because it accepts hop spans (as hoptel's OTLP exporters do), ``hoptel.setup(span_exporter=DiscardExporter())``
takes the same fast path a real OTLP setup takes: hops start lean ``HopSpan``s and are encoded straight to OTLP
bytes. Only the network send is left out, so a benchmark measures what a real deployment pays in-process.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from hoptel.hop_exporters import HopSpanExporter

__all__ = ["DiscardExporter"]


class DiscardExporter(HopSpanExporter, SpanExporter):
    """Encodes each batch to an OTLP request body and keeps nothing."""

    accepts_hop_spans = True

    def __init__(self) -> None:
        self.encoded_bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode ``spans`` (the CPU a real export spends before its network send) and drop the bytes."""
        if self._encoder is not None:
            self.encoded_bytes += len(self._encoder.encode(spans))
        return SpanExportResult.SUCCESS
