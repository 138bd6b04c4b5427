"""Lean spans for hops: sampled by the configured sampler, ended straight into hoptel's batch queue.

The OTel SDK span is general: it validates and copies attributes through ``BoundedAttributes``, takes locks,
builds a ``ReadableSpan`` snapshot at ``end()``, and walks the provider's processor chain. A hop span needs none of
that: its attributes come precomputed from the route, and it has one destination. ``HopTracer`` starts a
``HopSpan`` (an ordinary ``opentelemetry.trace.Span``, so handler code can use it as the current span and make SDK
children of it) when the span is sampled, and a ``NonRecordingSpan`` carrying the new ids when it is not.

The fast path is used only while it is exactly equivalent: the provider's only processor is hoptel's batch
processor and its exporter encodes hop spans (``hoptel.exporters``). If the application adds a span processor to
``tel.tracer_provider``, hops go back to the SDK tracer so that processor sees them.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from random import getrandbits
from time import time_ns
from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import (
    DEFAULT_TRACE_STATE,
    INVALID_SPAN,
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.util.types import Attributes, AttributeValue

from hoptel.config import SamplerConfig
from hoptel.otel_internals import SPAN_CONTEXT_IS_TUPLE, SPAN_KEY, active_span_processor

if TYPE_CHECKING:
    from hoptel.batch import BatchSpanProcessor

__all__ = ["HopSpan", "HopTracer", "SpanEvent", "remote_child_starter", "remote_parent_context"]

_MAX_ATTRIBUTES = 128
_MAX_EVENTS = 128
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED_BIT = TraceFlags.SAMPLED
_TRACE_ID_LIMIT = (1 << 64) - 1
_tuple_new = tuple.__new__
_UNSET = Status(StatusCode.UNSET)
_NO_EVENTS: list[SpanEvent] = []  # never appended to: a span copies before its first event
_END_LOCK = threading.Lock()
# SPAN_KEY (the context key of the current span) and the SpanContext layout: see hoptel.otel_internals.
_FAST_CONTEXT = SPAN_CONTEXT_IS_TUPLE
TUPLE_SPAN_CONTEXT = _FAST_CONTEXT
"""Whether ``SpanContext`` is the 6-tuple ``(trace_id, span_id, is_remote, flags, state, is_valid)`` (read by
unpacking in ``hoptel.otlp_wire``)."""


def remote_parent_context(parent: SpanContext | None) -> Context:
    """The context an extraction of ``parent`` yields: ``NonRecordingSpan(parent)`` current (empty for None)."""
    return Context() if parent is None else Context({SPAN_KEY: NonRecordingSpan(parent)})


RemoteChildStarter = Callable[[str, "SpanContext | None", SpanKind, "Mapping[str, AttributeValue] | None"], Span]


def remote_child_starter(tracer: Tracer | HopTracer) -> RemoteChildStarter:
    """``tracer.start_remote_child`` for a HopTracer; for any other OpenTelemetry tracer, the same via a context."""
    start: RemoteChildStarter | None = getattr(tracer, "start_remote_child", None)
    if start is not None:
        return start

    def start_remote_child(
        name: str, parent: SpanContext | None, kind: SpanKind, attributes: Mapping[str, AttributeValue] | None
    ) -> Span:
        return tracer.start_span(name, remote_parent_context(parent), kind, attributes)

    return start_remote_child


class SpanEvent:
    """One event on a hop span (``record_exception`` adds the ``exception`` event)."""

    __slots__ = ("attributes", "name", "time_ns")

    def __init__(self, name: str, attributes: Mapping[str, AttributeValue], timestamp: int) -> None:
        self.name = name
        self.attributes = attributes
        self.time_ns = timestamp


class HopSpan(Span):
    """A sampled span started by ``HopTracer``; ``end()`` queues it for export."""

    __slots__ = (
        "_context",
        "_sink",
        "base_attributes",
        "end_time",
        "events",
        "extra_attributes",
        "kind",
        "links",
        "name",
        "parent",
        "start_time",
        "status",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue] | None,
        sink: BatchSpanProcessor,
    ) -> None:
        self.name = name
        self._context = context
        self.parent = parent
        self.kind = kind
        # Shared and never mutated: the route's precomputed attributes. Per-span ones go to extra_attributes.
        self.base_attributes: Mapping[str, AttributeValue] = attributes or {}
        self.extra_attributes: dict[str, AttributeValue] = {}
        self.events: list[SpanEvent] = _NO_EVENTS  # shared until the first event
        self.links: Sequence[Link] = ()
        self.status = _UNSET
        self.start_time = time_ns()
        self.end_time: int | None = None
        self._sink = sink

    @property
    def attributes(self) -> dict[str, AttributeValue]:
        """All attributes: the route's, then this span's own."""
        merged = dict(self.base_attributes)
        merged.update(self.extra_attributes)
        return merged

    def get_span_context(self) -> SpanContext:
        """This span's ids, flags and trace state."""
        return self._context

    def is_recording(self) -> bool:
        """True until the span ends."""
        return self.end_time is None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set one attribute (ignored after end, or beyond 128 attributes, as the SDK's limits do)."""
        if self.end_time is None and (key in self.extra_attributes or len(self.extra_attributes) < _MAX_ATTRIBUTES):
            self.extra_attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Set several attributes (one update while they fit the limit, else one by one)."""
        extra = self.extra_attributes
        if self.end_time is None and len(extra) + len(attributes) <= _MAX_ATTRIBUTES:
            extra.update(attributes)
            return
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        """Add an event (at most 128)."""
        if self.end_time is None and len(self.events) < _MAX_EVENTS:
            if self.events is _NO_EVENTS:
                self.events = []
            self.events.append(SpanEvent(name, dict(attributes or {}), timestamp or time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        """Add a link to another span."""
        if self.end_time is None and context.is_valid:
            self.links = (*self.links, Link(context, attributes))

    def update_name(self, name: str) -> None:
        """Rename the span."""
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status; as in the SDK, OK is final and UNSET never overrides."""
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self.status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Add the ``exception`` event with type, message and stack trace."""
        event: dict[str, AttributeValue] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(
                traceback.format_exception(type(exception), exception, exception.__traceback__)
            ),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        """End the span and queue it for export; later calls are ignored."""
        with _END_LOCK:  # one lock for all spans: ending is rare per span and never contended for long
            if self.end_time is not None:
                return
            self.end_time = end_time or time_ns()
        self._sink.on_end(self)  # type: ignore[arg-type]  # the batch queue holds SDK and hop spans alike

    def __repr__(self) -> str:
        return f"HopSpan({self.name!r}, trace_id={self._context.trace_id:032x}, span_id={self._context.span_id:016x})"


class HopTracer:
    """Starts hop spans with the configured sampler's decision, without the SDK span machinery.

    Args:
        sampler: the validated ``OTEL_TRACES_SAMPLER`` setting (the SDK sampler built from it decides the same).
        sink: hoptel's batch processor.
        provider: the SDK provider; if its processors change, hops use ``fallback`` instead.
        fallback: the SDK tracer of ``provider``.
    """

    def __init__(self, sampler: SamplerConfig, sink: BatchSpanProcessor, provider: TracerProvider, fallback: Tracer):
        self._sink = sink
        self._fallback = fallback
        # The provider's processor chain and its processor tuple (private: see otel_internals.SPAN_PROCESSORS_ATTRIBUTE,
        # read as a plain attribute on every hop below, since a call would cost more).
        self._processors_holder = active_span_processor(provider)
        self._expected_processors = self._processors_holder._span_processors
        root = sampler.name.removeprefix("parentbased_")
        self._parent_based = sampler.name.startswith("parentbased_")
        # A root's decision: fixed for always_on/always_off, else by trace id against the ratio's bound.
        self._root_fixed: bool | None = {"always_on": True, "always_off": False}.get(root)
        self._ratio_bound = round(sampler.ratio * _TRACE_ID_LIMIT) if root == "traceidratio" else None

    def is_exact(self) -> bool:
        """True while hoptel's processor is the provider's only one (nobody added a processor since)."""
        return self._processors_holder._span_processors is self._expected_processors

    def _ratio_sampled(self, trace_id: int) -> bool:
        bound = self._ratio_bound
        return bound is not None and (trace_id & _TRACE_ID_LIMIT) < bound

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Span:
        """Start a span under the span in ``context`` (same signature as the SDK tracer's, for hops)."""
        if self._processors_holder._span_processors is not self._expected_processors:
            return self._fallback.start_span(name, context, kind, attributes)
        parent_span: Span = context.get(SPAN_KEY, INVALID_SPAN) if context is not None else INVALID_SPAN  # type: ignore[assignment]  # the Context maps keys to objects
        return self._start(name, parent_span.get_span_context(), kind, attributes)

    def start_remote_child(
        self,
        name: str,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue] | None,
    ) -> Span:
        """Start a span under a remote parent given as its span context (a root span if None).

        What ``start_span`` does for a context holding ``NonRecordingSpan(parent)``, for a server hop that has
        the extracted parent before any context exists.
        """
        if self._processors_holder._span_processors is not self._expected_processors:
            return self._fallback.start_span(name, remote_parent_context(parent), kind, attributes)
        return self._start(name, INVALID_SPAN_CONTEXT if parent is None else parent, kind, attributes)

    def _start(
        self,
        name: str,
        parent: SpanContext,
        kind: SpanKind,
        attributes: Mapping[str, AttributeValue] | None,
    ) -> Span:
        if _FAST_CONTEXT and type(parent) is SpanContext:
            trace_id, _, _, flags, state, valid = parent
        else:  # pragma: no cover - another SpanContext layout
            trace_id, flags, state, valid = parent.trace_id, parent.trace_flags, parent.trace_state, parent.is_valid
        parent_context: SpanContext | None = parent
        if not valid:
            trace_id = getrandbits(128) or 1
            state = DEFAULT_TRACE_STATE
            parent_context = None
        if valid and self._parent_based:
            sampled = bool(flags & _SAMPLED_BIT)
        else:  # a root, or a sampler that ignores the parent
            fixed = self._root_fixed
            sampled = fixed if fixed is not None else self._ratio_sampled(trace_id)
        span_id = getrandbits(64) or 1
        flags = _SAMPLED if sampled else _NOT_SAMPLED
        if _FAST_CONTEXT:  # built in place, not through a helper: one call less per hop
            context = _tuple_new(SpanContext, (trace_id, span_id, False, flags, state, True))
        else:  # pragma: no cover - another SpanContext layout
            context = SpanContext(trace_id, span_id, False, flags, state)
        if not sampled:
            return NonRecordingSpan(context)
        return HopSpan(name, context, parent_context, kind, attributes, self._sink)
