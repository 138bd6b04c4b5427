"""Zipkin B3 propagation: the single ``b3`` header and the ``X-B3-*`` multi-header form.

See https://github.com/openzipkin/b3-propagation. Both formats *extract* either form, the single header
first (as OpenTelemetry's B3 propagators do), and differ in what they *inject*:

* ``b3``: ``b3: {traceid}-{spanid}-{1|0}``.
* ``b3multi``: ``x-b3-traceid``, ``x-b3-spanid``, ``x-b3-sampled`` (``1``/``0``).

Extraction rules: trace ids are 16 or 32 hex digits (64-bit ids are left-padded to 128 bits), span ids 16;
hex is accepted in either case (B3 producers differ); all-zero ids are invalid. Single header:
``{traceid}-{spanid}[-{sampling}[-{parentspanid}]]`` where sampling is ``0``, ``1`` or ``d`` (debug, which
means sampled); a missing sampling field ("defer") is taken as sampled, as OpenTelemetry does; a bare
``0``/``1``/``d`` carries no ids. When the single header is absent, id-less or invalid, the multi headers are
read. Multi headers: ``X-B3-Sampled`` ``1``/``true``/``d`` or
``X-B3-Flags: 1`` mean sampled, anything else (or nothing) not sampled; ``X-B3-ParentSpanId`` is ignored.

>>> parse_b3_single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d")[2]
1
>>> hex(parse_b3_single("64fe8b2a57d3eff7-e457b5a2e4d86bd1-0")[0])
'0x64fe8b2a57d3eff7'
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.trace import TraceFlags

from ._core import PARENT_KEY, HeaderPairs, SpanFields, remote_span_context

__all__ = [
    "B3",
    "B3_FLAGS",
    "B3_PARENT_SPAN_ID",
    "B3_SAMPLED",
    "B3_SPAN_ID",
    "B3_TRACE_ID",
    "B3Format",
    "parse_b3_multi",
    "parse_b3_single",
]

B3 = "b3"
B3_TRACE_ID = "x-b3-traceid"
B3_SPAN_ID = "x-b3-spanid"
B3_SAMPLED = "x-b3-sampled"
B3_FLAGS = "x-b3-flags"
B3_PARENT_SPAN_ID = "x-b3-parentspanid"

_MAX_SINGLE_LENGTH = 128  # the longest valid value is 68 characters
_MAX_ID_LENGTH = 64
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED_VALUES = frozenset({"1", "true", "d"})

_SINGLE_MATCH = re.compile(
    r"([0-9a-fA-F]{32}|[0-9a-fA-F]{16})-([0-9a-fA-F]{16})(?:-([01d])(?:-([0-9a-fA-F]{16}))?)?"
).fullmatch
_TRACE_ID_MATCH = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{16}").fullmatch
_SPAN_ID_MATCH = re.compile(r"[0-9a-fA-F]{16}").fullmatch


def parse_b3_single(value: str) -> tuple[int, int, TraceFlags] | None:
    """Parse a ``b3`` single-header value.

    Args:
        value: ``{traceid}-{spanid}[-{sampling}[-{parentspanid}]]``; surrounding spaces are tolerated.

    Returns:
        ``(trace_id, span_id, flags)``, or ``None`` when the value is invalid or carries no ids.
    """
    if len(value) > _MAX_SINGLE_LENGTH:
        return None
    match = _SINGLE_MATCH(value)
    if match is None:
        stripped = value.strip(" \t")
        if stripped is value or (match := _SINGLE_MATCH(stripped)) is None:
            return None
    trace_id = int(match[1], 16)
    span_id = int(match[2], 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, _NOT_SAMPLED if match[3] == "0" else _SAMPLED


def parse_b3_multi(values: Mapping[str, str]) -> tuple[int, int, TraceFlags] | None:
    """Parse the ``X-B3-*`` headers.

    Args:
        values: Lower-case header name -> value.

    Returns:
        ``(trace_id, span_id, flags)``, or ``None`` when the ids are missing or invalid.
    """
    trace_hex = values.get(B3_TRACE_ID)
    span_hex = values.get(B3_SPAN_ID)
    if trace_hex is None or span_hex is None or len(trace_hex) > _MAX_ID_LENGTH or len(span_hex) > _MAX_ID_LENGTH:
        return None
    trace_hex = trace_hex.strip(" \t")
    span_hex = span_hex.strip(" \t")
    if _TRACE_ID_MATCH(trace_hex) is None or _SPAN_ID_MATCH(span_hex) is None:
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    sampled = values.get(B3_SAMPLED)
    flags = values.get(B3_FLAGS)
    if (flags is not None and flags.strip(" \t") == "1") or (
        sampled is not None and len(sampled) < 16 and sampled.strip(" \t").lower() in _SAMPLED_VALUES
    ):
        return trace_id, span_id, _SAMPLED
    return trace_id, span_id, _NOT_SAMPLED


class B3Format:
    """The ``b3`` (single header) or ``b3multi`` wire format.

    Args:
        single: Inject the single ``b3`` header when true, the ``X-B3-*`` headers otherwise.
    """

    reads: Mapping[str, bool] = {
        B3: False,
        B3_TRACE_ID: False,
        B3_SPAN_ID: False,
        B3_SAMPLED: False,
        B3_FLAGS: False,
    }
    # Writing either form replaces every B3 header the caller had: receivers prefer a stale single header.
    owned: tuple[str, ...] = (B3, B3_TRACE_ID, B3_SPAN_ID, B3_SAMPLED, B3_FLAGS, B3_PARENT_SPAN_ID)

    def __init__(self, single: bool) -> None:
        self.single = single
        self.name = "b3" if single else "b3multi"
        self.fields: tuple[str, ...] = (B3,) if single else (B3_TRACE_ID, B3_SPAN_ID, B3_SAMPLED)

    def extract(self, values: Mapping[str, str], context: Context, updates: dict[str, object]) -> None:
        """Record the remote parent from the ``b3`` header, else the ``X-B3-*`` headers, if valid."""
        parsed = None
        single = values.get(B3)
        if single is not None:
            parsed = parse_b3_single(single)
        if parsed is None:
            parsed = parse_b3_multi(values)
            if parsed is None:
                return
        updates[PARENT_KEY] = remote_span_context(*parsed)

    def inject(self, span: SpanFields | None, baggage: Mapping[str, object] | None, out: HeaderPairs) -> bool:
        """Append the B3 header(s) for ``span``."""
        if span is None:
            return False
        trace_id, span_id, flags, _ = span
        sampled = "1" if flags & TraceFlags.SAMPLED else "0"
        if self.single:
            out.append((B3, f"{trace_id:032x}-{span_id:016x}-{sampled}"))
        else:
            out.append((B3_TRACE_ID, f"{trace_id:032x}"))
            out.append((B3_SPAN_ID, f"{span_id:016x}"))
            out.append((B3_SAMPLED, sampled))
        return True

    def __repr__(self) -> str:
        return f"B3Format(single={self.single})"
