"""W3C Trace Context: the ``traceparent`` and ``tracestate`` headers.

Parsing follows the rules of https://www.w3.org/TR/trace-context-2/ (Level 2) for invalid input:

* ``traceparent`` is ``version-traceid-parentid-flags`` in lower-case hex. Version ``00`` is exactly 55
  characters; a later version (anything but ``ff``) may be longer if the ``00`` prefix parses and is followed
  by ``-``. Upper-case hex, an all-zero trace id or parent id, version ``ff``, a repeated ``traceparent``
  header, and values over 512 characters are invalid: the header is ignored.
* ``tracestate`` headers are combined with ``","``. A key is ``( lcalpha / DIGIT ) 0*255 keychar`` with
  ``keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`` (Level 2: ``@`` anywhere after the first
  character, 256 characters in all); a value is ``0*255(chr) nblk-chr``. Spaces and tabs around a list-member
  are ignored, and so are empty list-members. A repeated key keeps its first (left-most, most recent) entry.
  An invalid member or more than 32 members discards the tracestate but keeps the ``traceparent``. A list
  longer than 8192 characters is truncated by whole entries: entries over 128 characters go first, then
  entries from the right (:func:`truncate_tracestate`).

The happy path is one pre-compiled ``fullmatch`` (measured faster than ``split`` plus per-part checks in
CPython) and two ``int(..., 16)`` calls.

>>> parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")[2]
1
>>> parse_traceparent("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01") is None
True
>>> dict(parse_tracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,rojo=1"))
{'rojo': '00f067aa0ba902b7', 'congo': 't61rcWkgMzE'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.trace import DEFAULT_TRACE_STATE, SpanContext, TraceFlags, TraceState

from ._core import PARENT_KEY, TRACE_FLAGS, TUPLE_LAYOUT, HeaderPairs, SpanFields, remote_span_context

__all__ = [
    "MAX_TRACEPARENT_LENGTH",
    "MAX_TRACESTATE_ENTRY_KEPT_FIRST",
    "MAX_TRACESTATE_INPUT_LENGTH",
    "MAX_TRACESTATE_LENGTH",
    "MAX_TRACESTATE_MEMBERS",
    "TRACEPARENT",
    "TRACEPARENT_FLAGS_SUFFIX",
    "TRACESTATE",
    "TraceContextFormat",
    "format_traceparent",
    "format_traceparent_fields",
    "parse_traceparent",
    "parse_tracestate",
    "remote_parent",
    "truncate_tracestate",
]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
MAX_TRACEPARENT_LENGTH = 512
MAX_TRACESTATE_LENGTH = 8192
"""The most characters of ``tracestate`` kept and propagated (Level 2 asks for at least 512)."""
MAX_TRACESTATE_INPUT_LENGTH = 32768
"""A combined value longer than this is discarded unparsed (32 full members with OWS are about 16,500)."""
MAX_TRACESTATE_MEMBERS = 32
MAX_TRACESTATE_ENTRY_KEPT_FIRST = 128
"""Truncation removes entries longer than this first (Level 2, "tracestate Limits")."""

_VERSION_00_MATCH = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})").fullmatch
_TRACEPARENT_FORMAT = "00-%032x-%016x-%02x"
_FLAGS_HEX = tuple(format(flags, "02x") for flags in range(256))
TRACEPARENT_FLAGS_SUFFIX = tuple(f"-{flags}" for flags in _FLAGS_HEX)
"""The end of a version ``00`` ``traceparent`` by flags byte: ``"-01"`` for 1 (for renderers that inline it)."""
_tuple_new = tuple.__new__
_ANY_VERSION_MATCH = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL).fullmatch

# list-member = key "=" value, with OWS (spaces, tabs) around it; Level 2 keys may hold "@" after the first
# character. Trailing spaces are OWS, leading spaces belong to the value.
_TRACESTATE_MEMBER_MATCH = re.compile(
    r"[ \t]*"
    r"([0-9a-z][_0-9a-z\-*/@]{0,255})"
    r"=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
    r"[ \t]*"
).fullmatch


class _CheckedTraceState(TraceState):
    """A ``TraceState`` over entries this module has already checked against the Level 2 rules.

    ``TraceState(pairs)`` checks every pair again with OpenTelemetry's Level 1 key pattern, which refuses
    Level 2 keys (a 242-character tenant, a key starting with a digit and no ``@``) and logs a warning per
    duplicate. Handing it the checked dict keeps Level 2 keys and spends no second regex per member. The
    mapping behaves as any ``TraceState``; its ``add``/``update``/``delete`` build a plain one.
    """

    def __init__(self, entries: dict[str, str]) -> None:
        self._dict = entries


def parse_traceparent(value: str) -> tuple[int, int, TraceFlags] | None:
    """Parse a ``traceparent`` value.

    Args:
        value: The header value; surrounding spaces and tabs are tolerated.

    Returns:
        ``(trace_id, span_id, flags)``, or ``None`` when the value is invalid.
    """
    match = _VERSION_00_MATCH(value)
    if match is not None:
        trace_hex, span_hex, flags_hex = match.groups()
    else:
        if len(value) > MAX_TRACEPARENT_LENGTH:
            return None
        match = _ANY_VERSION_MATCH(value.strip(" \t"))
        if match is None:
            return None
        version, trace_hex, span_hex, flags_hex, rest = match.groups()
        if version == "ff" or (version == "00" and rest is not None):
            return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, TRACE_FLAGS[flags_hex]


def parse_tracestate(value: str) -> TraceState | None:
    """Parse a (combined) ``tracestate`` value by the W3C Trace Context Level 2 rules.

    Args:
        value: One header value, or several joined with ``","``.

    Returns:
        The trace state, or ``None`` when it is empty or must be discarded (an invalid member, more than 32
        members, longer than :data:`MAX_TRACESTATE_INPUT_LENGTH`). A repeated key keeps its first entry; a
        list longer than :data:`MAX_TRACESTATE_LENGTH` is truncated by :func:`truncate_tracestate`.
    """
    if len(value) > MAX_TRACESTATE_INPUT_LENGTH:
        return None
    entries: dict[str, str] = {}
    members = 0
    for member in value.split(","):
        match = _TRACESTATE_MEMBER_MATCH(member)
        if match is None:
            if member.strip(" \t"):
                return None
            continue  # empty list-members are allowed
        members += 1
        if members > MAX_TRACESTATE_MEMBERS:
            return None
        entries.setdefault(match[1], match[2])  # the left-most entry of a key is its most recent one
    if not entries:
        return None
    if len(value) > MAX_TRACESTATE_LENGTH:
        entries = truncate_tracestate(entries)
    return _CheckedTraceState(entries)


def truncate_tracestate(entries: Mapping[str, str], limit: int = MAX_TRACESTATE_LENGTH) -> dict[str, str]:
    """Drop whole entries until the list renders in at most ``limit`` characters.

    Level 2 ("tracestate Limits"): entries longer than 128 characters are removed first, then entries from
    the end of the list; nothing is cut inside an entry.

    Args:
        entries: The list-members in order (key to value).
        limit: The most characters the ``key=value,...`` rendering may take.

    Returns:
        The kept entries, in their order.

    >>> truncate_tracestate({"a": "1", "long": "x" * 200, "b": "2"}, limit=8)
    {'a': '1', 'b': '2'}
    """
    kept = dict(entries)
    length = sum(len(key) + len(val) + 1 for key, val in kept.items()) + len(kept) - 1
    for long_first in (True, False):
        for key in reversed(list(kept)):
            if length <= limit:
                return kept
            size = len(key) + len(kept[key]) + 1
            if size > MAX_TRACESTATE_ENTRY_KEPT_FIRST or not long_first:
                del kept[key]
                length -= size + 1
    return kept


def format_traceparent(span_context: SpanContext) -> str:
    """Render ``span_context`` as a version ``00`` ``traceparent`` value."""
    return _TRACEPARENT_FORMAT % (span_context.trace_id, span_context.span_id, span_context.trace_flags & 0xFF)


def format_traceparent_fields(trace_id: int, span_id: int, flags: int) -> str:
    """Render the ids and the flags byte as a version ``00`` ``traceparent`` value.

    The ids must be in range (128 and 64 bits), as a valid span context's are. ``bytes.hex`` is measured faster
    than ``%032x`` formatting of a 128-bit int, by a third in a tight loop and more on a cold hop.
    """
    return f"00-{trace_id.to_bytes(16, 'big').hex()}-{span_id.to_bytes(8, 'big').hex()}-{_FLAGS_HEX[flags]}"


def remote_parent(traceparent: str, tracestate: str | None = None) -> SpanContext | None:
    """The remote parent ``traceparent`` (and ``tracestate``) describe, or None if ``traceparent`` is invalid.

    Every incoming request runs this. The common value (version ``00``, 55 characters) takes one ``fullmatch``,
    two ``int(..., 16)`` and builds the ``SpanContext`` as a tuple here (``remote_span_context`` inlined: one call
    fewer); anything else goes through :func:`parse_traceparent`. Measured alternatives that did not pay in
    CPython 3.11: slice and ``str`` method checks instead of the regex (each check costs a call; ``islower`` on
    55 characters alone costs about as much as the match), one ``int`` over the ids joined, ``bytes.fromhex``
    with ``int.from_bytes``, and matching the value encoded as bytes.
    """
    match = _VERSION_00_MATCH(traceparent)
    if match is not None:
        trace_hex, span_hex, flags_hex = match.groups()
        trace_id = int(trace_hex, 16)
        span_id = int(span_hex, 16)
        if not trace_id or not span_id:
            return None
        flags = TRACE_FLAGS[flags_hex]
    else:
        parsed = parse_traceparent(traceparent)
        if parsed is None:
            return None
        trace_id, span_id, flags = parsed
    state = DEFAULT_TRACE_STATE
    if tracestate:
        state = parse_tracestate(tracestate) or DEFAULT_TRACE_STATE
    if TUPLE_LAYOUT:
        return _tuple_new(SpanContext, (trace_id, span_id, True, flags, state, True))
    return remote_span_context(trace_id, span_id, flags, state)


class TraceContextFormat:
    """The ``tracecontext`` wire format (``traceparent`` + ``tracestate``)."""

    name = "tracecontext"
    # A repeated traceparent is combined, which makes it invalid (as the W3C test suite expects).
    reads: Mapping[str, bool] = {TRACEPARENT: True, TRACESTATE: True}
    fields: tuple[str, ...] = (TRACEPARENT, TRACESTATE)
    owned: tuple[str, ...] = (TRACEPARENT, TRACESTATE)

    def extract(self, values: Mapping[str, str], context: Context, updates: dict[str, object]) -> None:
        """Record the remote parent from ``traceparent``/``tracestate`` in ``updates``, if valid."""
        traceparent = values.get(TRACEPARENT)
        if traceparent is not None:
            parent = self.parent(traceparent, values.get(TRACESTATE))
            if parent is not None:
                updates[PARENT_KEY] = parent

    @staticmethod
    def parent(traceparent: str, tracestate: str | None) -> SpanContext | None:
        """The remote parent these header values describe, or None if ``traceparent`` is invalid."""
        return remote_parent(traceparent, tracestate)

    def inject(self, span: SpanFields | None, baggage: Mapping[str, object] | None, out: HeaderPairs) -> bool:
        """Append ``traceparent`` (and a non-empty ``tracestate``) for ``span``."""
        if span is None:
            return False
        trace_id, span_id, flags, state = span
        out.append((TRACEPARENT, format_traceparent_fields(trace_id, span_id, flags)))
        if state is not DEFAULT_TRACE_STATE and state:  # identity first: TraceState.__len__ is Python
            out.append((TRACESTATE, state.to_header()))
        return True

    def __repr__(self) -> str:
        return "TraceContextFormat()"
