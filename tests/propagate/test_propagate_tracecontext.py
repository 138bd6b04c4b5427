"""W3C Trace Context rules: traceparent parsing and formatting, tracestate combination and discarding."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import TraceState
from propagate_support import SPAN_HEX, SPAN_ID, TRACE_HEX, TRACE_ID, TRACEPARENT, remote, span_ctx

from hoptel.propagate import Propagator, format_traceparent, parse_traceparent, parse_tracestate

TC = Propagator(["tracecontext"])


def test_valid_version_00_parses() -> None:
    """A well-formed version-00 traceparent yields its ids and flags."""
    assert parse_traceparent(TRACEPARENT) == (TRACE_ID, SPAN_ID, 1)


def test_flags_keep_every_bit() -> None:
    """Trace flags are kept whole (sampled and random-trace-id bits), like OpenTelemetry."""
    parsed = parse_traceparent(f"00-{TRACE_HEX}-{SPAN_HEX}-03")
    assert parsed is not None
    assert parsed[2] == 3
    assert parsed[2].sampled


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (f"00-{TRACE_HEX.upper()}-{SPAN_HEX}-01", "upper-case trace id"),
        (f"00-{TRACE_HEX}-{SPAN_HEX.upper()}-01", "upper-case parent id"),
        (f"00-{TRACE_HEX}-{SPAN_HEX}-0A", "upper-case flags"),
        (f"ff-{TRACE_HEX}-{SPAN_HEX}-01", "version ff"),
        (f"00-{'0' * 32}-{SPAN_HEX}-01", "all-zero trace id"),
        (f"00-{TRACE_HEX}-{'0' * 16}-01", "all-zero parent id"),
        (f"00-{TRACE_HEX}-{SPAN_HEX}-01-extra", "version 00 longer than 55"),
        (f"00-{TRACE_HEX}-{SPAN_HEX}-1", "one-digit flags"),
        (f"00-{TRACE_HEX}-{SPAN_HEX}-001", "three-digit flags"),
        (f"00-{TRACE_HEX[:-1]}-{SPAN_HEX}-01", "short trace id"),
        (f"00-{TRACE_HEX}-{SPAN_HEX}0-01", "long parent id"),
        (f"0-{TRACE_HEX}-{SPAN_HEX}-01", "one-digit version"),
        (f"0g-{TRACE_HEX}-{SPAN_HEX}-01", "non-hex version"),
        (f"00_{TRACE_HEX}_{SPAN_HEX}_01", "wrong separators"),
        (f"00-{TRACE_HEX[:-1]}g-{SPAN_HEX}-01", "non-hex trace id"),
        (f"00-{TRACE_HEX[:-1]}\u0661-{SPAN_HEX}-01", "non-ASCII digit"),
        (f"01-{TRACE_HEX}-{SPAN_HEX}-01.x", "future version without a dash after flags"),
        (f"01-{TRACE_HEX}-{SPAN_HEX}", "shorter than 55"),
        ("", "empty"),
        ("00-" + "a" * 600, "over 512 characters"),
    ],
)
def test_invalid_traceparent_is_ignored(value: str, why: str) -> None:
    """Invalid traceparent values parse to None and leave the incoming context unchanged."""
    assert parse_traceparent(value) is None, why
    incoming = span_ctx(trace_id=1, span_id=2)
    assert TC.extract_headers({"traceparent": value}, incoming) is incoming


def test_future_version_may_be_longer() -> None:
    """A future version (not ff) parses if its 00-shaped prefix parses and is followed by '-'."""
    assert parse_traceparent(f"cc-{TRACE_HEX}-{SPAN_HEX}-01-what-the-future-will-be-like") == (TRACE_ID, SPAN_ID, 1)
    assert parse_traceparent(f"01-{TRACE_HEX}-{SPAN_HEX}-00") == (TRACE_ID, SPAN_ID, 0)


def test_surrounding_whitespace_is_tolerated() -> None:
    """Optional whitespace around the value (HTTP OWS) does not invalidate it."""
    assert parse_traceparent(f" \t{TRACEPARENT}\t ") == (TRACE_ID, SPAN_ID, 1)


def test_repeated_traceparent_is_invalid() -> None:
    """Two traceparent headers are combined and therefore ignored (the W3C test suite's expectation)."""
    ctx = TC.extract_headers([("traceparent", TRACEPARENT), ("traceparent", TRACEPARENT)])
    assert not remote(ctx).is_valid


def test_extract_builds_remote_span_context() -> None:
    """Extraction puts a remote, non-recording span with the header's ids into the context."""
    ctx = TC.extract_headers({"traceparent": TRACEPARENT})
    span = trace.get_current_span(ctx)
    assert isinstance(span, trace.NonRecordingSpan)
    sc = span.get_span_context()
    assert (sc.trace_id, sc.span_id, sc.is_remote, sc.trace_flags, sc.is_valid) == (TRACE_ID, SPAN_ID, True, 1, True)
    assert sc.trace_state == TraceState()


def test_extract_keeps_other_context_entries() -> None:
    """Entries already in the incoming context survive; the input context object is not modified."""
    incoming = Context({"other-key": 42})
    ctx = TC.extract_headers({"traceparent": TRACEPARENT}, incoming)
    assert ctx["other-key"] == 42
    assert dict(incoming) == {"other-key": 42}
    assert isinstance(ctx, Context)


def test_extract_context_equals_set_span_in_context() -> None:
    """The context holds exactly what opentelemetry.trace.set_span_in_context would have put there."""
    ctx = TC.extract_headers({"traceparent": TRACEPARENT})
    expected = trace.set_span_in_context(trace.get_current_span(ctx), Context())
    assert set(ctx) == set(expected)


def test_tracestate_headers_are_combined() -> None:
    """Several tracestate headers are joined with ',' in order."""
    ctx = TC.extract_headers([("traceparent", TRACEPARENT), ("tracestate", "a=1,b=2"), ("tracestate", "c=3")])
    assert list(remote(ctx).trace_state.items()) == [("a", "1"), ("b", "2"), ("c", "3")]


def test_tracestate_with_spaces_and_empty_members() -> None:
    """Optional whitespace and empty list-members are allowed in tracestate."""
    state = parse_tracestate(" a=1 ,, \tvendor@tenant=x y ,")
    assert state is not None
    assert dict(state) == {"a": "1", "vendor@tenant": "x y"}


def test_more_than_32_members_discards_tracestate_keeps_traceparent() -> None:
    """Over 32 tracestate list-members: tracestate is discarded, the traceparent is kept."""
    members = ",".join(f"k{i}=v{i}" for i in range(33))
    ctx = TC.extract_headers({"traceparent": TRACEPARENT, "tracestate": members})
    assert remote(ctx).span_id == SPAN_ID
    assert len(remote(ctx).trace_state) == 0
    assert parse_tracestate(",".join(f"k{i}=v{i}" for i in range(32))) is not None


@pytest.mark.parametrize("value", ["A=1", "a=1,b", "a=", "a=1\x7f", "@a=1", "a=1,=2", "a" * 257 + "=1"])
def test_invalid_tracestate_member_discards_tracestate(value: str) -> None:
    """An invalid tracestate member discards the whole tracestate, not the traceparent.

    The Level 2 rules one by one are in test_propagate_tracestate.py.
    """
    assert parse_tracestate(value) is None
    ctx = TC.extract_headers({"traceparent": TRACEPARENT, "tracestate": value})
    assert remote(ctx).is_valid
    assert len(remote(ctx).trace_state) == 0


def test_inject_writes_traceparent_and_tracestate() -> None:
    """Inject writes a version-00 traceparent and a non-empty tracestate."""
    ctx = span_ctx(state=TraceState([("vendor", "opaque"), ("b", "2")]))
    headers: dict[str, str] = {}
    TC.inject_headers(headers, ctx)
    assert headers == {"traceparent": TRACEPARENT, "tracestate": "vendor=opaque,b=2"}


def test_inject_unsampled_and_empty_tracestate() -> None:
    """An unsampled span gets flags 00 and no tracestate header when its tracestate is empty."""
    headers: dict[str, str] = {}
    TC.inject_headers(headers, span_ctx(sampled=False))
    assert headers == {"traceparent": f"00-{TRACE_HEX}-{SPAN_HEX}-00"}


def test_format_traceparent_pads_ids() -> None:
    """Small ids are zero-padded to 32 and 16 hex digits."""
    sc = remote(span_ctx(trace_id=1, span_id=2))
    assert format_traceparent(sc) == f"00-{1:032x}-{2:016x}-01"
