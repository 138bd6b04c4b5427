"""The hop fast paths agree with the general paths they shortcut.

``extract_metadata_parent`` / ``extract_asgi_parent`` parse a lone ``traceparent`` inline, ``inject_span_metadata`` /
``inject_span_headers`` render one inline, and ``gather_metadata`` remembers metadata keys it may skip: each must
give exactly what the general path (the formats' loop, ``inject_metadata`` over a context) gives, for any input.

Example counts default to 300 per property; set HOPTEL_HYPOTHESIS_EXAMPLES to run more.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from propagate_support import SPAN_HEX, TRACE_HEX

from hoptel.propagate import Propagator, parse_traceparent, parse_tracestate
from hoptel.propagate.carriers import (
    MAX_SKIP_NAME_LENGTH,
    MAX_SKIP_NAMES,
    gather_metadata,
    merge_metadata,
    set_headers,
)
from hoptel.propagate.tracecontext import remote_parent

EXAMPLES = int(os.environ.get("HOPTEL_HYPOTHESIS_EXAMPLES", "300"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PROPAGATORS = [
    Propagator(),
    Propagator(["tracecontext"]),
    Propagator(["baggage", "tracecontext"]),
    Propagator(["tracecontext", "b3"]),
    Propagator(["b3multi"]),
    Propagator(["none"]),
]

# -- strategies ----------------------------------------------------------------------------------------------


@st.composite
def traceparents(draw: st.DrawFn) -> str:
    """Valid, nearly valid and odd traceparent values."""
    flags = draw(st.sampled_from(["00", "01", "ff", "0F", "1", "001", "zz"]))
    trace_hex = draw(st.sampled_from([TRACE_HEX, "0" * 32, TRACE_HEX.upper(), TRACE_HEX[:31], TRACE_HEX + "0"]))
    span_hex = draw(st.sampled_from([SPAN_HEX, "0" * 16, SPAN_HEX.upper(), "_" + SPAN_HEX[1:], "0x" + SPAN_HEX[2:]]))
    version = draw(st.sampled_from(["00", "01", "ff", "0"]))
    value = f"{version}-{trace_hex}-{span_hex}-{flags}" + draw(st.sampled_from(["", "-x", " ", "\t", "-"]))
    return draw(st.one_of(st.just(value), st.just(" " + value), st.text(max_size=60)))


names = st.sampled_from(
    ["traceparent", "Traceparent", "TRACESTATE", "tracestate", "baggage", "BaggagE", "user-agent", "User-Agent",
     "x-request-id", "b3", "X-B3-TraceId", "x-b3-spanid", "", "é", "x" * (MAX_SKIP_NAME_LENGTH + 1)]
)  # fmt: skip
header_values = st.one_of(traceparents(), st.sampled_from(["rojo=00f067aa0ba902b7", "k=v", "a=1,b=2", ""]))
metadata = st.lists(
    st.tuples(st.one_of(names, st.text(max_size=12)), st.one_of(header_values, st.binary(max_size=4))), max_size=6
)


@st.composite
def span_contexts(draw: st.DrawFn) -> SpanContext:
    """Valid and invalid span contexts, with and without a trace state."""
    trace_id = draw(st.sampled_from([0, 1, 0x0AF7651916CD43DD8448EB211C80319C, (1 << 128) - 1]))
    span_id = draw(st.sampled_from([0, 1, 0xB7AD6B7169203331, (1 << 64) - 1]))
    flags = TraceFlags(draw(st.integers(0, 255)))
    state = draw(st.sampled_from([None, TraceState(), TraceState([("rojo", "00f067aa0ba902b7")])]))
    return SpanContext(trace_id, span_id, draw(st.booleans()), flags, state)


contexts = st.sampled_from(
    [
        Context(),
        baggage.set_baggage("k", "v", Context()),
        Context({"unrelated": 1}),
    ]
)

# -- extract ---------------------------------------------------------------------------------------------------


@SETTINGS
@given(value=traceparents(), state=st.one_of(st.none(), st.sampled_from(["", "rojo=1", "a=1,,b=2", "BAD KEY=1"])))
def test_remote_parent_matches_the_parsers(value: str, state: str | None) -> None:
    parsed = parse_traceparent(value)
    parent = remote_parent(value, state)
    if parsed is None:
        assert parent is None
        return
    trace_id, span_id, flags = parsed
    expected = SpanContext(trace_id, span_id, True, flags, (parse_tracestate(state) if state else None) or None)
    assert parent is not None
    assert (parent.trace_id, parent.span_id, parent.is_remote, parent.trace_flags, parent.is_valid) == (
        expected.trace_id,
        expected.span_id,
        expected.is_remote,
        expected.trace_flags,
        expected.is_valid,
    )
    assert dict(parent.trace_state) == dict(expected.trace_state)
    assert type(parent.trace_flags) is TraceFlags


def _general_parent(prop: Propagator, values: dict[str, str]) -> tuple[SpanContext | None, dict[str, object]]:
    """The formats' loop, without the lone-traceparent shortcut."""
    if not values:
        return None, {}
    updates: dict[str, object] = {}
    for extract in prop._extractors:
        extract(values, Context(), updates)
    parent: Any = updates.pop("hoptel.remote_parent", None)
    return parent, updates


@SETTINGS
@given(md=metadata)
def test_extract_metadata_parent_matches_the_general_path(md: list[tuple[str, Any]]) -> None:
    for prop in PROPAGATORS:
        values = gather_metadata(md, prop._reads)
        expected = _general_parent(prop, values)
        for _ in range(2):  # the second time with the skip memo filled
            assert prop.extract_metadata_parent(md) == expected
        assert _comparable(prop.extract_metadata(md)) == _comparable(prop._extract_values(values, None))


def _comparable(context: Context) -> dict[str, object]:
    """A context's entries, spans by their span context (spans compare by identity)."""
    return {key: value.get_span_context() if isinstance(value, NonRecordingSpan) else value
            for key, value in context.items()}  # fmt: skip


@SETTINGS
@given(md=metadata)
def test_extract_asgi_parent_matches_the_general_path(md: list[tuple[str, Any]]) -> None:
    headers = [(key.encode("utf-8", "replace").lower(), str(value).encode("utf-8", "replace")) for key, value in md]
    scope = {"type": "http", "headers": headers}
    for prop in PROPAGATORS:
        values = gather_metadata([(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers], prop._reads)
        assert prop.extract_asgi_parent(scope) == _general_parent(prop, values)


@SETTINGS
@given(md=metadata)
def test_the_skip_memo_changes_nothing(md: list[tuple[str, Any]]) -> None:
    reads = Propagator(["tracecontext", "baggage", "b3multi"])._reads
    memo: set[str] = set()
    expected = gather_metadata(md, reads)
    assert gather_metadata(md, reads, memo) == expected
    assert gather_metadata(md, reads, memo) == expected
    assert gather_metadata(dict(md), reads, memo) == gather_metadata(dict(md), reads)
    assert all(name.islower() and name not in reads and len(name) <= MAX_SKIP_NAME_LENGTH for name in memo)


def test_the_skip_memo_is_bounded() -> None:
    prop = Propagator()
    for start in range(0, 3 * MAX_SKIP_NAMES, 50):
        prop.extract_metadata_parent([(f"x-key-{i}", "v") for i in range(start, start + 50)])
    prop.extract_metadata_parent([("y" * (MAX_SKIP_NAME_LENGTH + 1), "v"), ("user-agent", "x")])
    assert len(prop._skip_names) == MAX_SKIP_NAMES
    assert "y" * (MAX_SKIP_NAME_LENGTH + 1) not in prop._skip_names


@SETTINGS
@given(md=metadata)
def test_the_keep_memo_changes_nothing(md: list[tuple[str, Any]]) -> None:
    owned = frozenset(("traceparent", "tracestate"))
    memo: set[str] = set()
    ours = [("traceparent", "00-x")]
    expected = merge_metadata(md, list(ours), owned)
    assert merge_metadata(md, list(ours), owned, memo) == expected
    assert merge_metadata(md, list(ours), owned, memo) == expected
    assert merge_metadata(dict(md), list(ours), owned, memo) == merge_metadata(dict(md), list(ours), owned)
    assert all(name.islower() and name not in owned and len(name) <= MAX_SKIP_NAME_LENGTH for name in memo)


def test_the_keep_memo_is_bounded() -> None:
    memo: set[str] = set()
    owned = frozenset(("traceparent",))
    for start in range(0, 3 * MAX_SKIP_NAMES, 50):
        merge_metadata([(f"x-key-{i}", "v") for i in range(start, start + 50)], [], owned, memo)
    assert len(memo) == MAX_SKIP_NAMES


# -- inject ----------------------------------------------------------------------------------------------------


@SETTINGS
@given(span_context=span_contexts(), context=contexts, md=st.sampled_from([None, [], [("x-request-id", "42")],
       (("Traceparent", "old"), ("tracestate", "a=1"), ("k", "v")), {"traceparent": "old", "a": "b"}]))  # fmt: skip
def test_inject_span_metadata_matches_inject_metadata(span_context: SpanContext, context: Context, md: Any) -> None:
    in_context = trace.set_span_in_context(NonRecordingSpan(span_context), context)
    for prop in PROPAGATORS:
        assert prop.inject_span_metadata(md, span_context, context) == prop.inject_metadata(md, in_context)


@SETTINGS
@given(
    span_context=span_contexts(),
    context=contexts,
    kind=st.sampled_from(["httpx", "list", "bytes", "dict"]),
    pairs=st.sampled_from(
        [
            [],
            [("Host", "x"), ("user-agent", "python-httpx")],
            [("Host", "x"), ("TraceState", "old=1"), ("traceparent", "old")],
            [("TRACEPARENT", "old")],
            [("tracestate", "a=1")],
        ]
    ),
    encoding=st.sampled_from([None, "ascii", "utf-8", "iso-8859-1", "utf-16"]),
)
def test_inject_span_headers_matches_inject_headers(
    span_context: SpanContext, context: Context, kind: str, pairs: list[tuple[str, str]], encoding: str | None
) -> None:
    def carrier() -> Any:
        if kind == "httpx":
            headers = httpx.Headers(pairs, encoding="utf-8" if encoding == "ascii" else encoding)
            headers._encoding = encoding  # as httpx caches it once it has been asked
            return headers
        if kind == "bytes":
            return [(name.encode(), value.encode()) for name, value in pairs]
        return list(pairs) if kind == "list" else dict(pairs)

    in_context = trace.set_span_in_context(NonRecordingSpan(span_context), context)
    for prop in PROPAGATORS:
        fast, general = carrier(), carrier()
        prop.inject_span_headers(fast, span_context, context)
        prop.inject_headers(general, in_context)
        if kind == "httpx":
            assert fast.raw == general.raw
        else:
            assert fast == general


@SETTINGS
@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(["Host", "traceparent", "TraceState", "x-id", "baggage"]), st.just("v")), max_size=4
    ),
    ours=st.sampled_from(
        [[("traceparent", "00-new")], [("tracestate", "a=1")], [("traceparent", "00-new"), ("tracestate", "a=1")]]
    ),
    encoding=st.sampled_from([None, "ascii", "utf-8", "iso-8859-1"]),  # ASCII-compatible, as httpx picks
)
def test_set_headers_on_httpx_matches_its_public_api(
    pairs: list[tuple[str, str]], ours: list[tuple[str, str]], encoding: str | None
) -> None:
    owned = frozenset(("traceparent", "tracestate"))
    fast = httpx.Headers(pairs, encoding=encoding)
    reference = httpx.Headers(pairs, encoding=encoding)
    fast._encoding = reference._encoding = encoding  # as httpx caches it once it has been asked
    set_headers(fast, list(ours), owned, frozenset(name.encode() for name in owned))
    written = {name for name, _ in ours}
    for name in owned:
        if name not in written and name in reference:
            del reference[name]
    for name, value in ours:
        reference[name] = value
    assert fast.raw == reference.raw
