"""tracestate by W3C Trace Context Level 2 (https://www.w3.org/TR/trace-context-2/), one rule per test.

Each test quotes or paraphrases the rule it checks; where Level 2 leaves a choice (MAY), the docstring says which
one hoptel makes. Cases marked "test suite" are those of the W3C trace-context test suite (test/test.py) at Level 2.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from propagate_support import SPAN_ID, TRACE_ID, TRACEPARENT, remote, span_ctx

from hoptel.propagate import Propagator, parse_tracestate
from hoptel.propagate.tracecontext import (
    MAX_TRACESTATE_INPUT_LENGTH,
    MAX_TRACESTATE_LENGTH,
    truncate_tracestate,
)

TC = Propagator(["tracecontext"])
KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/@"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")


def _state(*tracestate: str) -> dict[str, str]:
    """The tracestate a server extracts next to a valid traceparent from these tracestate header lines."""
    headers = [("traceparent", TRACEPARENT), *(("tracestate", value) for value in tracestate)]
    sc = remote(TC.extract_headers(headers))
    assert (sc.trace_id, sc.span_id, sc.is_valid) == (TRACE_ID, SPAN_ID, True)  # the traceparent always holds
    return dict(sc.trace_state)


@pytest.mark.parametrize(
    "key",
    [
        "z" * 256,  # test suite: a key of 256 characters
        "t" * 241 + "@" + "v" * 14,  # test suite: the Level 1 maximum multi-tenant key
        "t" * 242 + "@v",  # test suite: a 242-character tenant (refused by Level 1)
        "t@" + "v" * 15,  # test suite: a 15-character system part (refused by Level 1)
        "t" * 100 + "@" + "v" * 155,  # 256 in all, split anyhow
        "foo@",  # test suite: "@" last
        "foo@@bar",  # test suite: two "@" in a row
        "foo@bar@baz",  # test suite: two "@"
        "1special",  # a digit first, without "@" (refused by Level 1)
        KEY_CHARS,  # every keychar
    ],
)
def test_key_grammar_accepts_level_2_keys(key: str) -> None:
    """Key: ``( lcalpha / DIGIT ) 0*255 ( keychar )``, keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@".

    "A key MUST begin with a lowercase letter or a digit and contain up to 256 characters including lowercase
    letters, digits, underscores, dashes, asterisks, forward slashes, and at signs." Such a key is inherited.
    """
    assert _state("foo=1", f"{key}=1") == {"foo": "1", key: "1"}


@pytest.mark.parametrize(
    "key",
    [
        "z" * 257,  # test suite: 257 characters
        "t" * 242 + "@" + "v" * 14,  # 257 characters with an "@"
        "@foo",  # test suite: starts with "@"
        "_foo",
        "-foo",
        "*foo",
        "/foo",
        "FOO",  # test suite: upper case
        "foo.bar",  # test suite: "." is no keychar
        "foo ",  # test suite: a space before "="
        "fóo",
    ],
)
def test_key_grammar_refuses_other_keys(key: str) -> None:
    """A key outside the Level 2 key grammar makes the member invalid: the tracestate is discarded.

    Level 2 processing model: "If the tracestate header cannot be parsed the vendor MAY discard the entire
    header." hoptel does (the test suite expects it), and keeps the traceparent.
    """
    assert parse_tracestate(f"foo=1,{key}=1") is None
    assert _state("foo=1", f"{key}=1") == {}


def test_value_grammar_accepts_printable_ascii_but_comma_and_equals() -> None:
    """Value: "up to 256 printable ASCII characters (0x20 to 0x7E) except comma and =", ending in a non-space.

    ``value = 0*255(chr) nblk-chr``: every allowed character, and a value of exactly 256 characters.
    """
    full = ("x" * 256)[: 256 - len(VALUE_CHARS)] + VALUE_CHARS
    assert len(full) == 256
    assert _state(f"a={VALUE_CHARS}", f"b={full}") == {"a": VALUE_CHARS, "b": full}


def test_value_keeps_leading_spaces_and_drops_trailing_ones() -> None:
    """Leading spaces belong to the value, trailing ones do not.

    Level 2: "All leading spaces MUST be preserved as part of the value. All trailing spaces are considered to be
    optional whitespace characters not part of the value."
    """
    assert _state("a=  x y  ,b=z \t") == {"a": "  x y", "b": "z"}


@pytest.mark.parametrize(
    "value",
    [
        "foo=",  # test suite: an empty value
        "foo=,bar=3",  # test suite: an empty value discards the other members too
        "foo=bar=baz",  # test suite: "=" inside a value
        "foo= ",  # only a space: the value must end in a non-space
        "foo=" + "x" * 257,  # 257 characters
        "foo=a\tb",  # a tab inside a value
        "foo=caf\u00e9",  # not ASCII
        "foo=a\x7f",  # DEL is not printable
        "foo",  # no "=" at all
        "=1",  # no key
    ],
)
def test_invalid_value_discards_tracestate_keeps_traceparent(value: str) -> None:
    """An invalid member discards the whole tracestate ("MAY discard the entire header"), never the traceparent.

    "failure to parse tracestate MUST NOT affect the parsing of traceparent."
    """
    assert parse_tracestate(value) is None
    assert _state("ok=1", value) == {}


def test_ows_around_members_is_ignored() -> None:
    """Level 2: "Spaces and horizontal tabs surrounding list-members are ignored." (test suite: OWS handling)."""
    assert _state("foo=1 \t , \t bar=2, \t baz=3") == {"foo": "1", "bar": "2", "baz": "3"}
    assert _state("foo=1\t \t,\t \tbar=2,\t \tbaz=3") == {"foo": "1", "bar": "2", "baz": "3"}


def test_empty_and_whitespace_only_members_are_allowed() -> None:
    """Empty members and empty header lines are accepted and skipped.

    Level 2: "Empty and whitespace-only list members are allowed. Vendors MUST accept empty tracestate headers."
    They are skipped, and an empty header line next to a valid one changes nothing (test suite: empty header).
    """
    assert _state("foo=1,, \t ,,bar=2,") == {"foo": "1", "bar": "2"}
    assert _state("foo=1", "") == {"foo": "1"}
    assert _state("", "foo=1") == {"foo": "1"}
    assert _state("") == {}
    assert parse_tracestate(" , \t,") is None


def test_multiple_header_fields_are_combined_in_order() -> None:
    """Several header lines are combined, in order.

    Level 2: "When receiving multiple tracestate header fields, they MUST be combined into a single header."
    Order is kept (test suite: multiple headers with different keys).
    """
    state = _state("foo=1,bar=2", "rojo=1,congo=2", "baz=3")
    assert list(state.items()) == [("foo", "1"), ("bar", "2"), ("rojo", "1"), ("congo", "2"), ("baz", "3")]


@pytest.mark.parametrize(
    ("lines", "kept"),
    [
        (["foo=1,foo=1"], "1"),
        (["foo=1,foo=2"], "1"),
        (["foo=1", "foo=1"], "1"),
        (["foo=1", "foo=2"], "1"),
        (["bar=0,foo=2,bar=1,foo=3"], "2"),
    ],
)
def test_duplicated_keys_are_inherited_keeping_the_left_most(lines: list[str], kept: str) -> None:
    """Level 2 test suite: a tracestate with duplicated keys is inherited, as-is or with duplicates discarded.

    Level 2 allows "vendors MAY also discard duplicate keys that were not generated by them". hoptel keeps the
    left-most entry of each key: modified keys move to the left, so the left-most is the most recent position.
    """
    state = _state(*lines)
    assert state["foo"] == kept
    assert len(state) == len({member.split("=")[0] for line in lines for member in line.split(",")})


def test_thirty_two_members_are_inherited_thirty_three_discard_the_tracestate() -> None:
    """At most 32 members: 33 discard the tracestate (the traceparent stays).

    Level 2: "There can be a maximum of 32 list-members in a list." 32 members are inherited; a list of 33 is
    invalid and hoptel discards it whole (the test suite expects so; keeping the first 32 would hand on a list
    its sender never wrote). Repeated keys count as members on the wire.
    """
    lines = [",".join(f"bar{i:02}={i:02}" for i in range(start, min(start + 10, 33))) for start in (1, 11, 21, 31)]
    assert len(_state(*lines)) == 32
    assert _state(*lines[:-1], lines[-1] + ",bar33=33") == {}
    assert _state(",".join(["foo=1"] * 33)) == {}
    assert _state(",".join(["foo=1"] * 32)) == {"foo": "1"}


def test_tracestate_is_not_parsed_without_a_valid_traceparent() -> None:
    """Without a valid traceparent there is no tracestate.

    Level 2: "If the vendor failed to parse traceparent, it MUST NOT attempt to parse tracestate"; a tracestate
    "received without an accompanying traceparent header, it is invalid and MUST be discarded."
    """
    incoming = span_ctx(trace_id=1, span_id=2)
    assert TC.extract_headers({"tracestate": "foo=1"}, incoming) is incoming
    assert TC.extract_headers({"traceparent": "00-xyz-01", "tracestate": "foo=1"}, incoming) is incoming
    assert not remote(TC.extract_headers({"tracestate": "foo=1"})).is_valid


def test_received_tracestate_is_sent_on_unchanged() -> None:
    """The received tracestate goes out again on the next hop.

    Level 2: "Vendors receiving a tracestate request header MUST send it to outgoing requests." A child span's
    outgoing tracestate is the one received, Level 2 keys included, in order, without the OWS and empty members
    of the incoming header (a SDK span in between, as on a real hop).
    """
    tenant_key = "t" * 242 + "@v"
    incoming = TC.extract_headers(
        [("traceparent", TRACEPARENT), ("tracestate", f" {tenant_key}=x ,, 1a=2"), ("tracestate", "1a=3,c=4")]
    )
    provider = TracerProvider()
    try:
        with provider.get_tracer("t").start_as_current_span("hop", context=incoming) as span:
            headers: dict[str, str] = {}
            TC.inject_headers(headers, trace.set_span_in_context(span, Context()))
    finally:
        provider.shutdown()
    assert headers["tracestate"] == f"{tenant_key}=x,1a=2,c=4"


def test_at_least_512_characters_are_propagated() -> None:
    """Lists of up to 8192 characters are propagated whole.

    Level 2: "Vendors SHOULD propagate at least 512 characters of a combined header." hoptel keeps and sends up
    to 8192 characters (its documented maximum) untouched.
    """
    value = ",".join(f"k{i:02}={chr(ord('a') + i % 26) * 250}" for i in range(32))
    assert 512 < len(value) == 8159 <= MAX_TRACESTATE_LENGTH
    headers: dict[str, str] = {}
    TC.inject_headers(headers, TC.extract_headers({"traceparent": TRACEPARENT, "tracestate": value}))
    assert headers["tracestate"] == value


def test_truncation_removes_whole_entries_longer_than_128_first_then_from_the_end() -> None:
    """Truncation drops whole entries: those over 128 characters first, then from the end.

    Level 2: "the vendor MUST truncate whole entries. Entries larger than 128 characters long SHOULD be removed
    first. Then entries SHOULD be removed starting from the end of tracestate."
    """
    long_a, long_b = "a" * 150, "b" * 150
    entries = {"s1": "1", "la": long_a, "s2": "2", "lb": long_b, "s3": "3", "s4": "4"}
    # Removing lb (right-most long entry) is enough for 200 characters.
    assert truncate_tracestate(entries, 200) == {"s1": "1", "la": long_a, "s2": "2", "s3": "3", "s4": "4"}
    # Both long entries go before any short one.
    assert truncate_tracestate(entries, 19) == {"s1": "1", "s2": "2", "s3": "3", "s4": "4"}
    # Then short entries from the end.
    assert truncate_tracestate(entries, 9) == {"s1": "1", "s2": "2"}
    assert truncate_tracestate(entries, 3) == {}
    assert truncate_tracestate(entries, 10_000) == entries


def test_a_received_list_over_8192_characters_is_truncated_not_discarded() -> None:
    """A valid list over hoptel's 8192-character maximum is truncated, not discarded.

    32 members of up to 513 characters make up to 16 KB. The rule above applies: long entries from the right
    first, the short ones all kept.
    """
    members = [f"long{i:02}{'-' * 200}={'x' * 250}" for i in range(24)] + [f"s{i}=v" for i in range(8)]
    value = ",".join(members)
    assert len(value) > MAX_TRACESTATE_LENGTH
    state = _state(value)
    assert len(",".join(f"{k}={v}" for k, v in state.items())) <= MAX_TRACESTATE_LENGTH
    assert [key for key in state if key.startswith("s")] == [f"s{i}" for i in range(8)]
    long_keys = [key[:6] for key in state if key.startswith("long")]
    assert long_keys == [f"long{i:02}" for i in range(len(long_keys))]
    assert 15 <= len(long_keys) < 24


def test_truncation_applies_to_a_list_over_several_header_lines() -> None:
    """Header lines are combined first, then truncated: the short entries of the last line survive the long ones."""
    long_lines = [f"long{i:02}{'-' * 200}={'x' * 250}" for i in range(24)]
    state = _state(*long_lines, "s0=v,s1=v")
    assert list(state)[-2:] == ["s0", "s1"]
    assert len(",".join(f"{k}={v}" for k, v in state.items())) <= MAX_TRACESTATE_LENGTH


def test_an_oversized_header_is_discarded_unparsed_keeping_the_traceparent() -> None:
    """A combined value beyond any valid list (over 32768 characters, e.g. a flood of commas) is not parsed."""
    flood = "foo=1" + "," * MAX_TRACESTATE_INPUT_LENGTH
    assert parse_tracestate(flood) is None
    assert _state(flood) == {}
    assert _state("foo=1" + "," * (MAX_TRACESTATE_INPUT_LENGTH - 5)) == {"foo": "1"}
