"""B3 single and multi header: 64/128-bit ids, sampling and debug flags, parent span id, injection."""

from __future__ import annotations

import pytest
from propagate_support import SPAN_HEX, SPAN_ID, TRACE_HEX, TRACE_ID, remote, span_ctx

from hoptel.propagate import Propagator, parse_b3_multi, parse_b3_single

B3 = Propagator(["b3"])
B3MULTI = Propagator(["b3multi"])
SHORT_TRACE_HEX = "64fe8b2a57d3eff7"
PARENT_HEX = "05e3ac9a4f6e3b90"


@pytest.mark.parametrize(
    ("value", "sampled"),
    [
        (f"{TRACE_HEX}-{SPAN_HEX}-1", True),
        (f"{TRACE_HEX}-{SPAN_HEX}-0", False),
        (f"{TRACE_HEX}-{SPAN_HEX}-d", True),
        (f"{TRACE_HEX}-{SPAN_HEX}", True),  # deferred: taken as sampled, as OpenTelemetry does
        (f"{TRACE_HEX}-{SPAN_HEX}-1-{PARENT_HEX}", True),
        (f"{TRACE_HEX}-{SPAN_HEX}-0-{PARENT_HEX}", False),
    ],
)
def test_single_header_128_bit(value: str, sampled: bool) -> None:
    """The single b3 header yields the ids and the sampling decision (d = debug = sampled)."""
    for prop in (B3, B3MULTI):  # both formats extract either form
        sc = remote(prop.extract_headers({"b3": value}))
        assert (sc.trace_id, sc.span_id, sc.is_remote, sc.trace_flags.sampled) == (TRACE_ID, SPAN_ID, True, sampled)


def test_single_header_64_bit_trace_id_is_left_padded() -> None:
    """A 16-hex-digit trace id becomes the low 64 bits of a 128-bit id."""
    sc = remote(B3.extract_headers({"b3": f"{SHORT_TRACE_HEX}-{SPAN_HEX}-1"}))
    assert sc.trace_id == int(SHORT_TRACE_HEX, 16)
    assert f"{sc.trace_id:032x}" == "0" * 16 + SHORT_TRACE_HEX


def test_single_header_accepts_upper_case_hex() -> None:
    """B3 producers differ in case; upper-case hex is accepted (as OpenTelemetry's B3 propagator does)."""
    assert parse_b3_single(f"{TRACE_HEX.upper()}-{SPAN_HEX.upper()}-1") == (TRACE_ID, SPAN_ID, 1)


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "1",
        "d",
        f"{TRACE_HEX}",
        f"{TRACE_HEX}-{SPAN_HEX}-x",
        f"{TRACE_HEX}-{SPAN_HEX}-true",
        f"{TRACE_HEX}-{SPAN_HEX}-1-{PARENT_HEX}-extra",
        f"{TRACE_HEX}-{SPAN_HEX}-1-zz",
        f"{TRACE_HEX}-{SPAN_HEX}--{PARENT_HEX}",
        f"{TRACE_HEX[:-1]}-{SPAN_HEX}-1",
        f"{'0' * 32}-{SPAN_HEX}-1",
        f"{TRACE_HEX}-{'0' * 16}-1",
        f"{TRACE_HEX}-{SPAN_HEX}-1" + "-" * 200,
    ],
)
def test_invalid_single_header_leaves_context_unchanged(value: str) -> None:
    """A b3 value without valid ids (or with a bad sampling/parent field) changes nothing."""
    assert parse_b3_single(value) is None
    incoming = span_ctx(trace_id=1, span_id=2)
    assert B3.extract_headers({"b3": value}, incoming) is incoming


@pytest.mark.parametrize(
    ("sampled", "flags", "expected"),
    [
        ("1", None, True),
        ("true", None, True),
        ("True", None, True),
        ("0", None, False),
        ("false", None, False),
        (None, None, False),
        (None, "1", True),
        ("0", "1", True),
        ("junk", None, False),
    ],
)
def test_multi_headers_sampling(sampled: str | None, flags: str | None, expected: bool) -> None:
    """X-B3-Sampled 1/true means sampled, 0/false not; X-B3-Flags: 1 (debug) means sampled."""
    headers = {"X-B3-TraceId": TRACE_HEX, "X-B3-SpanId": SPAN_HEX, "X-B3-ParentSpanId": PARENT_HEX}
    if sampled is not None:
        headers["X-B3-Sampled"] = sampled
    if flags is not None:
        headers["X-B3-Flags"] = flags
    sc = remote(B3MULTI.extract_headers(headers))
    assert (sc.trace_id, sc.span_id, sc.trace_flags.sampled) == (TRACE_ID, SPAN_ID, expected)


def test_multi_headers_64_bit_trace_id() -> None:
    """A 64-bit X-B3-TraceId is left-padded to 128 bits."""
    parsed = parse_b3_multi({"x-b3-traceid": SHORT_TRACE_HEX, "x-b3-spanid": SPAN_HEX, "x-b3-sampled": "1"})
    assert parsed == (int(SHORT_TRACE_HEX, 16), SPAN_ID, 1)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-b3-traceid": TRACE_HEX},
        {"x-b3-spanid": SPAN_HEX},
        {"x-b3-traceid": TRACE_HEX + "0", "x-b3-spanid": SPAN_HEX},
        {"x-b3-traceid": TRACE_HEX, "x-b3-spanid": SPAN_HEX + "0"},
        {"x-b3-traceid": "0" * 32, "x-b3-spanid": SPAN_HEX},
        {"x-b3-traceid": TRACE_HEX, "x-b3-spanid": "g" * 16},
    ],
)
def test_invalid_multi_headers_leave_context_unchanged(headers: dict[str, str]) -> None:
    """Missing or malformed X-B3 ids change nothing."""
    incoming = span_ctx(trace_id=1, span_id=2)
    assert B3MULTI.extract_headers(headers, incoming) is incoming


def test_single_header_wins_over_multi() -> None:
    """When both forms are present the single header is used; the multi headers are the fallback."""
    headers = {"b3": f"{TRACE_HEX}-{SPAN_HEX}-1", "x-b3-traceid": "1" * 32, "x-b3-spanid": "2" * 16}
    assert remote(B3.extract_headers(headers)).span_id == SPAN_ID
    headers["b3"] = "1"  # sampling only: no ids, so the multi headers are read
    assert remote(B3.extract_headers(headers)).span_id == int("2" * 16, 16)


def test_inject_single() -> None:
    """b3 injects '{trace}-{span}-{1|0}' with a 32-digit trace id."""
    headers: dict[str, str] = {}
    B3.inject_headers(headers, span_ctx(trace_id=int(SHORT_TRACE_HEX, 16)))
    assert headers == {"b3": f"{'0' * 16}{SHORT_TRACE_HEX}-{SPAN_HEX}-1"}
    B3.inject_headers(headers, span_ctx(sampled=False))
    assert headers == {"b3": f"{TRACE_HEX}-{SPAN_HEX}-0"}


def test_inject_multi() -> None:
    """b3multi injects X-B3-TraceId, X-B3-SpanId and X-B3-Sampled (lower-case names)."""
    headers: dict[str, str] = {}
    B3MULTI.inject_headers(headers, span_ctx(sampled=False))
    assert headers == {"x-b3-traceid": TRACE_HEX, "x-b3-spanid": SPAN_HEX, "x-b3-sampled": "0"}


def test_inject_replaces_stale_b3_headers() -> None:
    """Writing B3 removes every B3 header the caller had, whatever its case (no stale parent or flags)."""
    headers = {"B3": "stale", "X-B3-Flags": "1", "X-B3-ParentSpanId": PARENT_HEX, "keep": "me"}
    B3MULTI.inject_headers(headers, span_ctx())
    assert headers == {"keep": "me", "x-b3-traceid": TRACE_HEX, "x-b3-spanid": SPAN_HEX, "x-b3-sampled": "1"}


def test_fields() -> None:
    """Fields lists what inject writes."""
    assert B3.fields == {"b3"}
    assert B3MULTI.fields == {"x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}
