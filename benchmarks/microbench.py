"""What the micro-benchmarks (``bench_recorder_*.py``) share: the CPU clock and an exporter that encodes, then drops.

``DiscardExporter`` accepts hop spans, as hoptel's OTLP exporters do, so ``hoptel.setup(span_exporter=
DiscardExporter())`` takes the fast path a real OTLP setup takes: hops start lean ``HopSpan``s and are encoded
straight to OTLP bytes. Only the network send is left out. ``best_cpu_us`` reads the process CPU clock (every
thread: the batch thread's encoding included) around a round of calls and the flush that exports them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import hoptel
from hoptel.hop_exporters import HopSpanExporter

__all__ = ["DiscardExporter", "bench_telemetry", "best_cpu_us"]


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


def best_cpu_us(
    call: Callable[[], object], flush: Callable[[], object] = lambda: None, calls: int = 5_000, rounds: int = 7
) -> float:
    """CPU µs per call (all threads), best of ``rounds`` rounds of ``calls`` calls, each followed by ``flush``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            call()
        flush()
        best = min(best, time.process_time() - start)
    return best / calls * 1e6


def bench_telemetry(sampler: str, queue_size: int) -> hoptel.Telemetry:
    """A Telemetry for a micro-benchmark: ``DiscardExporter``, no endpoint, quiet logs, a queue of ``queue_size``."""
    return hoptel.setup(
        "bench",
        span_exporter=DiscardExporter(),
        environ={},
        install_global=False,
        metrics_addr="off",
        traces_sampler=sampler,
        bsp_max_queue_size=queue_size,
        log="warning",
    )
