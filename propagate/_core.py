"""Shared internals: the OpenTelemetry context keys, remote-span construction and the wire-format protocol.

Every wire format (``tracecontext``, ``b3``, ``b3multi``, ``baggage``) implements :class:`WireFormat`. The
composite :class:`~hoptel.propagate.Propagator` gathers the header values a carrier holds into one small dict
and hands it to each format in turn; formats never see the carrier, so one parser serves every carrier.

Extraction collects its results in an *updates* dict (context key -> value) and the composite builds **one**
new :class:`~opentelemetry.context.Context` from it, instead of one copy per propagator as OTel's composite
does. The keys are taken from OpenTelemetry's own ``set_span_in_context`` and ``set_baggage``, so the result
is exactly what those functions would have produced. A format records a remote parent as its bare
``SpanContext`` under :data:`PARENT_KEY`; the composite wraps it in the ``NonRecordingSpan`` that goes under
``SPAN_KEY`` only when it builds a ``Context`` (a server hop starts its span from the bare parent and never
builds that span).

``SpanContext`` has been a 6-tuple ``(trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)`` since
opentelemetry-api 1.0. Building it with ``tuple.__new__`` (ids already validated by the parsers) and reading it
by unpacking halves the cost of its constructor and properties; an import-time probe checks the layout, and
if a release ever changes it the public constructor and properties are used instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.trace import (
    DEFAULT_TRACE_STATE,
    Span,
    SpanContext,
    TraceFlags,
    TraceState,
)

from hoptel.otel_internals import BAGGAGE_KEY, SPAN_CONTEXT_IS_TUPLE, SPAN_KEY

__all__ = [
    "BAGGAGE_KEY",
    "PARENT_KEY",
    "SPAN_KEY",
    "TRACE_FLAGS",
    "TUPLE_LAYOUT",
    "HeaderPairs",
    "SpanFields",
    "WireFormat",
    "remote_span_context",
    "span_fields",
    "span_fields_of",
]

HeaderPairs = list[tuple[str, str]]
"""Lower-case header name and value pairs that a format writes on inject."""
SpanFields = tuple[int, int, int, TraceState]
"""What inject needs of a valid span context: ``(trace_id, span_id, flags & 0xFF, trace_state)``."""

# SPAN_KEY and BAGGAGE_KEY, the context keys OpenTelemetry itself uses: re-exported from hoptel.otel_internals.
PARENT_KEY = "hoptel.remote_parent"
"""The *updates* key under which a format records the remote parent's ``SpanContext`` (never in a Context)."""

# Every two-digit lower-case hex string -> its TraceFlags; a dict lookup both validates and converts.
TRACE_FLAGS: dict[str, TraceFlags] = {format(i, "02x"): TraceFlags(i) for i in range(256)}

_tuple_new = tuple.__new__


_TUPLE_LAYOUT = SPAN_CONTEXT_IS_TUPLE  # the layout probe: hoptel.otel_internals
TUPLE_LAYOUT = _TUPLE_LAYOUT
"""Whether ``SpanContext`` is built and read as a 6-tuple here (see the module docstring); hot paths inline it."""
_SPAN_TYPES: set[type] = set()  # classes already checked to be Spans (isinstance on an ABC is slow)


class WireFormat(Protocol):
    """One propagation wire format, independent of the carrier.

    Attributes:
        name: The ``OTEL_PROPAGATORS`` name.
        reads: Lower-case header names read on extract, each mapped to ``True`` when several occurrences are
            combined with ``","`` (``tracestate``, ``baggage``) and ``False`` when the first one wins.
        fields: Header names written on inject (OpenTelemetry's ``TextMapPropagator.fields``).
        owned: Header names replaced when this format writes: ``fields`` plus companions that would be stale
            (``tracestate`` next to a new ``traceparent``).
    """

    name: str
    reads: Mapping[str, bool]
    fields: tuple[str, ...]
    owned: tuple[str, ...]

    def extract(self, values: Mapping[str, str], context: Context, updates: dict[str, object]) -> None:
        """Parse ``values`` (lower-case name -> value) and record context changes in ``updates``.

        A remote parent goes under :data:`PARENT_KEY` as a ``SpanContext`` (a later format's replaces it).

        Must never raise; an invalid or missing header records nothing.
        """

    def inject(self, span: SpanFields | None, baggage: Mapping[str, object] | None, out: HeaderPairs) -> bool:
        """Append this format's headers to ``out``; return whether anything was written."""


def _remote_context_tuple(
    trace_id: int, span_id: int, flags: TraceFlags, state: TraceState = DEFAULT_TRACE_STATE
) -> SpanContext:
    return _tuple_new(SpanContext, (trace_id, span_id, True, flags, state, True))


def _remote_context_public(
    trace_id: int, span_id: int, flags: TraceFlags, state: TraceState = DEFAULT_TRACE_STATE
) -> SpanContext:
    return SpanContext(trace_id, span_id, True, flags, state)


remote_span_context = _remote_context_tuple if _TUPLE_LAYOUT else _remote_context_public
"""Build the span context of a remote parent.

``remote_span_context(trace_id, span_id, flags, state=DEFAULT_TRACE_STATE)`` returns
``SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags, trace_state=state)``, as OpenTelemetry's
propagators build it; the ids must be non-zero and in range (the parsers check).
"""


def span_fields(context: Context) -> SpanFields | None:
    """Return the fields of the valid span context of the span in ``context``, else ``None``."""
    span = context.get(SPAN_KEY)
    if span is None:
        return None
    kind = type(span)
    if kind not in _SPAN_TYPES:
        if not isinstance(span, Span):
            return None
        _SPAN_TYPES.add(kind)
    return span_fields_of(span.get_span_context())  # type: ignore[attr-defined]  # a Span, checked above


def span_fields_of(span_context: SpanContext) -> SpanFields | None:
    """Return the fields of ``span_context`` if it is valid, else ``None``."""
    if _TUPLE_LAYOUT and type(span_context) is SpanContext:
        trace_id, span_id, _, flags, state, valid = span_context
    else:
        trace_id = span_context.trace_id
        span_id = span_context.span_id
        flags = span_context.trace_flags
        state = span_context.trace_state
        valid = span_context.is_valid
    if valid:
        return trace_id, span_id, flags & 0xFF, state
    return None
