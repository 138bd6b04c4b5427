"""An OTLP receiver for development and tests: OTLP/gRPC and OTLP/HTTP on loopback, kept in memory.

>>> from hoptel.receiver import OTLPReceiver, format_traces
>>> with OTLPReceiver() as rx:                                   # doctest: +SKIP
...     exporter = OTLPSpanExporter(endpoint=rx.grpc_endpoint, insecure=True)
...     ...                                                      # export some spans
...     rx.wait_for_spans(3)
...     print(format_traces(rx.spans()))

``python -m hoptel.receiver`` runs one in the foreground and prints each finished trace as a tree.
"""

from hoptel.receiver.behaviour import FailureStatus
from hoptel.receiver.model import Protocol, ReceivedEvent, ReceivedLog, ReceivedSpan, SpanKind, StatusCode
from hoptel.receiver.receiver import OTLPReceiver
from hoptel.receiver.store import SpanListener
from hoptel.receiver.tree import format_span, format_trace, format_traces

__all__ = [
    "FailureStatus",
    "OTLPReceiver",
    "Protocol",
    "ReceivedEvent",
    "ReceivedLog",
    "ReceivedSpan",
    "SpanKind",
    "SpanListener",
    "StatusCode",
    "format_span",
    "format_trace",
    "format_traces",
]
