"""Shared helpers for the hoptel.propagate tests: known ids and contexts holding a span or baggage."""

from __future__ import annotations

from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

__all__ = ["SPAN_HEX", "SPAN_ID", "TRACEPARENT", "TRACE_HEX", "TRACE_ID", "remote", "span_ctx", "with_baggage"]

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
TRACE_HEX = f"{TRACE_ID:032x}"
SPAN_HEX = f"{SPAN_ID:016x}"
TRACEPARENT = f"00-{TRACE_HEX}-{SPAN_HEX}-01"


def span_ctx(
    trace_id: int = TRACE_ID,
    span_id: int = SPAN_ID,
    sampled: bool = True,
    state: TraceState | None = None,
    context: Context | None = None,
) -> Context:
    """A context holding a (local, non-recording) span with the given ids."""
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span = NonRecordingSpan(SpanContext(trace_id, span_id, False, flags, state))
    return trace.set_span_in_context(span, context if context is not None else Context())


def with_baggage(entries: dict[str, str], context: Context | None = None) -> Context:
    """``context`` (default: empty) with ``entries`` set through opentelemetry.baggage."""
    ctx = context if context is not None else Context()
    for key, value in entries.items():
        ctx = baggage.set_baggage(key, value, ctx)
    return ctx


def remote(ctx: Context) -> SpanContext:
    """The span context of the span in ``ctx``."""
    return trace.get_current_span(ctx).get_span_context()
