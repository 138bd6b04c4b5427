"""An OTLP receiver for development and tests: OTLP/gRPC and OTLP/HTTP on loopback, kept in memory.

>>> from hoptel.receiver import OTLPReceiver, format_traces
>>> with OTLPReceiver() as rx:                                   # doctest: +SKIP
...     exporter = OTLPSpanExporter(endpoint=rx.grpc_endpoint, insecure=True)
...     ...                                                      # export some spans
...     rx.wait_for_spans(3)
...     print(format_traces(rx.spans()))

``python -m hoptel.receiver`` runs one in the foreground and prints each finished trace as a tree, and the
metrics it receives as one line per series (count, p50, p99).
"""

from hoptel.receiver.behaviour import FailureStatus
from hoptel.receiver.metrics import ReceivedExemplar, ReceivedMetric
from hoptel.receiver.metrics_view import MetricSeries, format_metrics, summarize_metrics
from hoptel.receiver.model import Protocol, ReceivedEvent, ReceivedLog, ReceivedSpan, SpanKind, StatusCode
from hoptel.receiver.receiver import OTLPReceiver
from hoptel.receiver.store import MetricListener, SpanListener
from hoptel.receiver.tree import format_span, format_trace, format_traces

__all__ = [
    "FailureStatus",
    "MetricListener",
    "MetricSeries",
    "OTLPReceiver",
    "Protocol",
    "ReceivedEvent",
    "ReceivedExemplar",
    "ReceivedLog",
    "ReceivedMetric",
    "ReceivedSpan",
    "SpanKind",
    "SpanListener",
    "StatusCode",
    "format_metrics",
    "format_span",
    "format_trace",
    "format_traces",
    "summarize_metrics",
]
