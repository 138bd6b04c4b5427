"""Value objects for telemetry the receiver has accepted: spans, their events, and log records.

They are plain frozen dataclasses holding Python values (ids as lowercase hex, attributes as ``dict``), so a
test can compare them, print them, and filter them without touching protobuf. Treat the ``dict`` fields as
read-only: the spans of one export request share their ``resource`` dict. The ``dict`` fields take no part
in hashing, so a value object is hashable by its scalar fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Protocol", "ReceivedEvent", "ReceivedLog", "ReceivedSpan", "SpanKind", "StatusCode"]

SpanKind = Literal["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
"""The span kinds, as the OTel API spells them (an unspecified kind is reported as ``INTERNAL``)."""

StatusCode = Literal["UNSET", "OK", "ERROR"]
"""The span status codes."""

Protocol = Literal["grpc", "http"]
"""The OTLP transport a record arrived over."""


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One span event.

    Attributes:
        name: The event name, e.g. ``"exception"``.
        attributes: The event attributes as Python values.
        time_ns: The event timestamp, nanoseconds since the Unix epoch.
    """

    name: str
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)
    time_ns: int = 0


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One span as the receiver got it.

    Attributes:
        trace_id: 32 lowercase hex digits.
        span_id: 16 lowercase hex digits.
        parent_span_id: 16 lowercase hex digits, or ``None`` for a root span.
        name: The span name.
        kind: ``"INTERNAL"``, ``"SERVER"``, ``"CLIENT"``, ``"PRODUCER"`` or ``"CONSUMER"``.
        start_ns: Start time, nanoseconds since the Unix epoch.
        end_ns: End time, nanoseconds since the Unix epoch.
        status_code: ``"UNSET"``, ``"OK"`` or ``"ERROR"``.
        status_message: The status description ("" when none).
        attributes: Span attributes as Python values (str, int, float, bool, bytes, list, dict).
        events: The span events, in the order they were recorded.
        resource: The resource attributes of the process that sent the span.
        service_name: The resource's ``service.name`` ("" when absent).
        scope_name: The instrumentation scope name.
        protocol: ``"grpc"`` or ``"http"``: how the span reached the receiver.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    status_code: StatusCode
    status_message: str
    attributes: dict[str, Any] = field(hash=False)
    events: tuple[ReceivedEvent, ...]
    resource: dict[str, Any] = field(hash=False)
    service_name: str
    scope_name: str
    protocol: Protocol

    @property
    def duration_ns(self) -> int:
        """End minus start, in nanoseconds."""
        return self.end_ns - self.start_ns


@dataclass(frozen=True, slots=True)
class ReceivedLog:
    """One log record as the receiver got it.

    Attributes:
        body: The body; a non-string body is rendered with ``str()`` of its Python value.
        severity_text: E.g. ``"WARN"`` ("" when none).
        severity_number: The OTel severity number (0 when unspecified).
        trace_id: 32 lowercase hex digits, or ``None`` when the record has no trace context.
        span_id: 16 lowercase hex digits, or ``None``.
        attributes: Record attributes as Python values.
        resource: The resource attributes of the process that sent the record.
        service_name: The resource's ``service.name`` ("" when absent).
        time_ns: The record timestamp (the observed timestamp when the record has none).
        scope_name: The instrumentation scope (logger) name.
        protocol: ``"grpc"`` or ``"http"``.
    """

    body: str
    severity_text: str
    severity_number: int
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, Any] = field(hash=False)
    resource: dict[str, Any] = field(hash=False)
    service_name: str
    time_ns: int
    scope_name: str
    protocol: Protocol
