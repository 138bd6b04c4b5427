"""The composite :class:`Propagator` built from ``OTEL_PROPAGATORS``, with one fast method per carrier.

Extraction runs the configured formats in order over the header values gathered from the carrier in one pass;
a later valid format overrides the span context of an earlier one, exactly as OpenTelemetry's
``CompositePropagator`` does, and the result is built as a single new ``Context``. Injection reads the span
context and the baggage once, lets each format append its headers, and writes them in one go. When the
context has neither a valid span nor baggage, inject writes nothing and returns at once.

Hops use two shortcuts that build no intermediate ``Context``: a server takes the remote parent as a bare
``SpanContext`` plus the other extracted entries (``extract_*_parent``), and a client injects its new span's ids
with the caller's baggage (``inject_span_*``).

``extract`` / ``inject`` / ``fields`` make :class:`Propagator` an OpenTelemetry
:class:`~opentelemetry.propagators.textmap.TextMapPropagator`, so it can be installed with
``opentelemetry.propagate.set_global_textmap(propagator)`` and serve the official instrumentations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.context import Context, get_current
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace import DEFAULT_TRACE_STATE, NonRecordingSpan, SpanContext

from ._core import (
    BAGGAGE_KEY,
    PARENT_KEY,
    SPAN_KEY,
    TUPLE_LAYOUT,
    SpanFields,
    WireFormat,
    span_fields,
    span_fields_of,
)
from .b3 import B3Format
from .baggage import BaggageFormat
from .carriers import (
    HeadersCarrier,
    Metadata,
    MetadataList,
    copy_metadata,
    gather_asgi,
    gather_headers,
    gather_metadata,
    merge_metadata,
    set_headers,
)
from .textmap import ASGIGetter, HeadersGetter, HeadersSetter, MetadataGetter
from .tracecontext import (
    TRACEPARENT,
    TRACEPARENT_FLAGS_SUFFIX,
    TraceContextFormat,
    format_traceparent_fields,
    remote_parent,
)

__all__ = ["DEFAULT_PROPAGATORS", "PROPAGATOR_NAMES", "Propagator", "propagator_from_env"]

DEFAULT_PROPAGATORS = ("tracecontext", "baggage")
"""The formats used when ``OTEL_PROPAGATORS`` is unset or empty."""
PROPAGATOR_NAMES = ("tracecontext", "baggage", "b3", "b3multi", "none")
"""Every name ``OTEL_PROPAGATORS`` accepts."""


_EMPTY = Context()  # read-only stand-in for "no incoming context"; never returned


def _make_format(name: str) -> WireFormat:
    if name == "tracecontext":
        return TraceContextFormat()
    if name == "baggage":
        return BaggageFormat()
    return B3Format(single=name == "b3")


class Propagator(TextMapPropagator):
    """Propagates trace context and baggage in the configured wire formats.

    Args:
        names: Format names, in ``OTEL_PROPAGATORS`` order: ``tracecontext``, ``baggage``, ``b3`` (single
            header), ``b3multi``; ``none`` anywhere turns propagation off (as in OpenTelemetry). Names are
            case-insensitive; repeats are ignored. A string is split at commas.

    Raises:
        ValueError: An unknown or empty name.

    Every ``extract*`` method starts from ``context`` (default: a new empty ``Context``, as OpenTelemetry's
    propagators do), never raises, and returns ``context`` itself when the carrier holds nothing valid. Every
    ``inject*`` method reads ``context`` (default: the current context).

    Example:
        >>> from opentelemetry import trace
        >>> prop = Propagator()
        >>> ctx = prop.extract_metadata([("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
        >>> f"{trace.get_current_span(ctx).get_span_context().span_id:x}"
        'b7ad6b7169203331'
        >>> prop.inject_metadata([("x-user", "1")], ctx)[1]
        ('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
    """

    def __init__(self, names: Iterable[str] = DEFAULT_PROPAGATORS) -> None:
        if isinstance(names, str):
            names = names.split(",")
        chosen: list[str] = []
        for raw in names:
            name = raw.strip().lower()
            if name not in PROPAGATOR_NAMES:
                raise ValueError(f"unknown propagator {raw!r}; expected one of {', '.join(PROPAGATOR_NAMES)}")
            if name not in chosen:
                chosen.append(name)
        if "none" in chosen:
            chosen = []
        self.names: tuple[str, ...] = tuple(chosen)
        self._formats: tuple[WireFormat, ...] = tuple(_make_format(name) for name in chosen)
        self._extractors = tuple(fmt.extract for fmt in self._formats)
        self._injectors = tuple((1 << bit, fmt.inject) for bit, fmt in enumerate(self._formats))
        reads: dict[str, bool] = {}
        for fmt in self._formats:
            for name, combine in fmt.reads.items():
                reads[name] = reads.get(name, False) or combine
        self._reads = reads
        # Metadata keys seen to be lower-case and not read (user-agent, ...), bounded: see gather_metadata.
        self._skip_names: set[str] = set()
        # Caller metadata keys seen to be lower-case and not owned by tracecontext (merge_metadata), bounded.
        self._kept_names: set[str] = set()
        self._reads_bytes = {name.encode("ascii"): name for name in reads}
        # The header names replaced by an inject, by bitmask of the formats that wrote.
        self._owned_by_mask = tuple(
            frozenset(name for bit, fmt in enumerate(self._formats) if mask & (1 << bit) for name in fmt.owned)
            for mask in range(1 << len(self._formats))
        )
        self._owned_bytes_by_mask = tuple(
            frozenset(name.encode("latin-1") for name in owned) for owned in self._owned_by_mask
        )
        self._fields = frozenset(name for fmt in self._formats for name in fmt.fields)
        # tracecontext first and at most baggage after it: a span with the default trace state, injected without
        # baggage, needs exactly the one traceparent header, and a carrier holding only a traceparent yields only
        # the parent (a hop's common cases, handled without the loop over the formats).
        self._traceparent_alone = (
            bool(self._formats)
            and isinstance(self._formats[0], TraceContextFormat)
            and all(isinstance(fmt, BaggageFormat) for fmt in self._formats[1:])
        )

        # inject_span_*: the traceparent-alone case rendered inline, reading SpanContext as the tuple it is.
        self._span_fast = self._traceparent_alone and TUPLE_LAYOUT

    def __repr__(self) -> str:
        return f"Propagator({list(self.names)!r})"

    # -- the fast, carrier-specific API -------------------------------------------------------------------

    def extract_metadata(self, metadata: Metadata, context: Context | None = None) -> Context:
        """Extract from gRPC metadata (pairs, ``grpc.aio.Metadata`` or ``None``); never raises."""
        try:
            values = gather_metadata(metadata, self._reads, self._skip_names)
        except Exception:  # a carrier that cannot even be tested for truth
            values = {}
        return self._extract_values(values, context)

    def extract_headers(self, headers: HeadersCarrier, context: Context | None = None) -> Context:
        """Extract from HTTP headers (``httpx.Headers``, a mapping, or pairs); never raises."""
        try:
            values = gather_headers(headers, self._reads, self._reads_bytes)
        except Exception:  # a carrier that cannot even be tested for truth
            values = {}
        return self._extract_values(values, context)

    def extract_asgi(self, scope: Mapping[str, Any], context: Context | None = None) -> Context:
        """Extract from an ASGI scope's ``headers``; never raises."""
        try:
            values = gather_asgi(scope, self._reads, self._reads_bytes)
        except Exception:  # a scope that is not a scope
            values = {}
        return self._extract_values(values, context)

    def extract_metadata_parent(self, metadata: Metadata) -> tuple[SpanContext | None, dict[str, object]]:
        """For a server hop: the remote parent in gRPC metadata and the other entries extracted; never raises.

        Returns:
            The parent's span context (``None`` when no valid one) and the other context entries (baggage) as
            a fresh dict: ``Context(entries | {SPAN_KEY: server_span})`` is what ``set_span_in_context`` would
            give for the server span in ``extract_metadata(metadata)``.
        """
        try:
            values = gather_metadata(metadata, self._reads, self._skip_names)
        except Exception:  # a carrier that cannot even be tested for truth
            return None, {}
        if len(values) == 1 and self._traceparent_alone:  # the common case, inlined: a traceparent alone
            traceparent = values.get(TRACEPARENT)
            if traceparent is not None:
                return remote_parent(traceparent), {}
        return self._parent_and_updates(values)

    def extract_asgi_parent(self, scope: Mapping[str, Any]) -> tuple[SpanContext | None, dict[str, object]]:
        """:meth:`extract_metadata_parent` for an ASGI scope's ``headers``; never raises."""
        try:
            values = gather_asgi(scope, self._reads, self._reads_bytes)
        except Exception:  # a scope that is not a scope
            return None, {}
        if len(values) == 1 and self._traceparent_alone:  # the common case, inlined: a traceparent alone
            traceparent = values.get(TRACEPARENT)
            if traceparent is not None:
                return remote_parent(traceparent), {}
        return self._parent_and_updates(values)

    def inject_metadata(self, metadata: Metadata = None, context: Context | None = None) -> MetadataList:
        """Return a new metadata list: the caller's entries in order, then ours (lower-case names).

        A caller's entry with a name ours replace (``traceparent``, ``tracestate``, ...) is left out, so
        there are no duplicates. ``metadata`` itself is never modified.
        """
        out, mask = self._render(context)
        if not mask:
            return copy_metadata(metadata)
        return merge_metadata(metadata, out, self._owned_by_mask[mask])

    def inject_span_metadata(self, metadata: Metadata, span_context: SpanContext, context: Context) -> MetadataList:
        """``inject_metadata`` for a client hop's new span, not yet in any context, with ``context``'s baggage.

        The same as ``inject_metadata(metadata, set_span_in_context(span, context))``, without that context.
        """
        if self._span_fast and type(span_context) is SpanContext:  # the common case, inlined (see _render_fields)
            trace_id, span_id, _, flags, state, valid = span_context
            if valid and state is DEFAULT_TRACE_STATE:
                baggage = context.get(BAGGAGE_KEY)
                if not baggage or not isinstance(baggage, dict):
                    traceparent = (
                        f"00-{trace_id.to_bytes(16, 'big').hex()}-{span_id.to_bytes(8, 'big').hex()}"
                        f"{TRACEPARENT_FLAGS_SUFFIX[flags & 0xFF]}"
                    )
                    return merge_metadata(
                        metadata, [(TRACEPARENT, traceparent)], self._owned_by_mask[1], self._kept_names
                    )
        out, mask = self._render_fields(span_fields_of(span_context), context.get(BAGGAGE_KEY))
        if not mask:
            return copy_metadata(metadata)
        return merge_metadata(metadata, out, self._owned_by_mask[mask])

    def inject_span_headers(self, headers: HeadersCarrier, span_context: SpanContext, context: Context) -> None:
        """``inject_headers`` for a client hop's new span with ``context``'s baggage (see above)."""
        if self._span_fast and type(span_context) is SpanContext:  # the common case, inlined (see _render_fields)
            trace_id, span_id, _, flags, state, valid = span_context
            if valid and state is DEFAULT_TRACE_STATE:
                baggage = context.get(BAGGAGE_KEY)
                if not baggage or not isinstance(baggage, dict):
                    traceparent = (
                        f"00-{trace_id.to_bytes(16, 'big').hex()}-{span_id.to_bytes(8, 'big').hex()}"
                        f"{TRACEPARENT_FLAGS_SUFFIX[flags & 0xFF]}"
                    )
                    set_headers(
                        headers, [(TRACEPARENT, traceparent)], self._owned_by_mask[1], self._owned_bytes_by_mask[1]
                    )
                    return
        out, mask = self._render_fields(span_fields_of(span_context), context.get(BAGGAGE_KEY))
        if mask:
            set_headers(headers, out, self._owned_by_mask[mask], self._owned_bytes_by_mask[mask])

    def inject_headers(self, headers: HeadersCarrier, context: Context | None = None) -> None:
        """Write our headers into ``headers`` in place, replacing any the caller already had.

        Args:
            headers: ``httpx.Headers`` (written with ``headers[name] = value``), a ``MutableMapping[str, str]``,
                or a list of pairs.
            context: The context to propagate (default: the current one).

        Raises:
            TypeError: ``headers`` cannot be written to.
        """
        out, mask = self._render(context)
        if mask:
            set_headers(headers, out, self._owned_by_mask[mask], self._owned_bytes_by_mask[mask])

    # -- OpenTelemetry's TextMapPropagator -------------------------------------------------------------------

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        """Extract with an OpenTelemetry ``Getter``; hoptel's own getters take the fast path. Never raises."""
        kind = type(getter)
        if kind is MetadataGetter:
            return self.extract_metadata(carrier, context)  # type: ignore[arg-type]  # the getter's carrier
        if kind is HeadersGetter:
            return self.extract_headers(carrier, context)  # type: ignore[arg-type]  # the getter's carrier
        if kind is ASGIGetter:
            return self.extract_asgi(carrier, context)  # type: ignore[arg-type]  # the getter's carrier
        values: dict[str, str] = {}
        for name, combine in self._reads.items():
            try:
                got = getter.get(carrier, name)
            except Exception:  # a getter that fails is a header that is missing
                continue
            if not got:
                continue
            texts = [one for one in ([got] if isinstance(got, str) else got) if isinstance(one, str)]
            if texts:
                values[name] = ",".join(texts) if combine else texts[0]
        return self._extract_values(values, context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        """Inject with an OpenTelemetry ``Setter`` (``HeadersSetter`` takes the fast path)."""
        if type(setter) is HeadersSetter:
            self.inject_headers(carrier, context)  # type: ignore[arg-type]  # the setter's carrier
            return
        out, _ = self._render(context)
        for name, value in out:
            setter.set(carrier, name, value)

    @property
    def fields(self) -> set[str]:
        """The header names ``inject`` may write."""
        return set(self._fields)

    # -- internals -------------------------------------------------------------------------------------------

    def _updates(self, values: dict[str, str], context: Context) -> dict[str, object]:
        if self._traceparent_alone and len(values) == 1:  # the common case: a traceparent and nothing else
            traceparent = values.get(TRACEPARENT)
            if traceparent is not None:
                parent = remote_parent(traceparent)
                return {} if parent is None else {PARENT_KEY: parent}
        updates: dict[str, object] = {}
        for extract in self._extractors:
            extract(values, context, updates)
        return updates

    def _extract_values(self, values: dict[str, str], context: Context | None) -> Context:
        if values:
            updates = self._updates(values, _EMPTY if context is None else context)
            if updates:
                parent = updates.pop(PARENT_KEY, None)
                if parent is not None:
                    updates[SPAN_KEY] = NonRecordingSpan(parent)  # type: ignore[arg-type]  # formats store SpanContexts
                return Context(context, **updates) if context else Context(updates)
        return Context() if context is None else context

    def _parent_and_updates(self, values: dict[str, str]) -> tuple[SpanContext | None, dict[str, object]]:
        if not values:
            return None, {}
        updates = self._updates(values, _EMPTY)
        parent: SpanContext | None = updates.pop(PARENT_KEY, None)  # type: ignore[assignment]  # formats store SpanContexts
        return parent, updates

    def _render(self, context: Context | None) -> tuple[list[tuple[str, str]], int]:
        if context is None:
            context = get_current()
        return self._render_fields(span_fields(context), context.get(BAGGAGE_KEY))

    def _render_fields(self, span: SpanFields | None, baggage: object) -> tuple[list[tuple[str, str]], int]:
        if not baggage or not isinstance(baggage, dict):
            if span is None:
                return [], 0
            baggage = None
            if self._traceparent_alone and span[3] is DEFAULT_TRACE_STATE:  # the common case: one header
                return [(TRACEPARENT, format_traceparent_fields(span[0], span[1], span[2]))], 1
        out: list[tuple[str, str]] = []
        mask = 0
        for bit, inject in self._injectors:
            if inject(span, baggage, out):
                mask |= bit
        return out, mask


def propagator_from_env(value: str | None, variable: str = "OTEL_PROPAGATORS") -> Propagator:
    """Build the propagator an ``OTEL_PROPAGATORS`` value asks for.

    Args:
        value: The variable's value: comma-separated names (see :class:`Propagator`). ``None``, empty or
            blank means the default, ``tracecontext,baggage`` (an empty variable counts as unset).
        variable: The variable's name, for the error message.

    Returns:
        The propagator.

    Raises:
        ValueError: An unknown name or an empty entry; the message names ``variable`` and the value.

    >>> propagator_from_env("b3multi, tracecontext").names
    ('b3multi', 'tracecontext')
    >>> propagator_from_env("jaeger")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: OTEL_PROPAGATORS='jaeger': unknown propagator 'jaeger'; expected one of ...
    """
    if value is None or not value.strip():
        return Propagator(DEFAULT_PROPAGATORS)
    names = value.split(",")
    if any(not name.strip() for name in names):
        raise ValueError(f"{variable}={value!r}: empty entry; expected comma-separated propagator names")
    try:
        return Propagator(names)
    except ValueError as exc:
        raise ValueError(f"{variable}={value!r}: {exc}") from None
