"""W3C Baggage: parsing, encoding, round trips, leniency and the 180-member / 8192-byte limits."""

from __future__ import annotations

from opentelemetry import baggage
from propagate_support import TRACEPARENT, remote, span_ctx, with_baggage

from hoptel.propagate import (
    MAX_BAGGAGE_BYTES,
    MAX_BAGGAGE_MEMBERS,
    Propagator,
    format_baggage,
    parse_baggage,
)

BAG = Propagator(["baggage"])


def test_round_trip_through_headers() -> None:
    """Baggage set with opentelemetry.baggage survives inject then extract, encoded where needed."""
    entries = {"user": "alice", "with space": "a b", "plus": "1+1=2", "comma": "x,y;z", "unicode": "ünï"}
    headers: dict[str, str] = {}
    BAG.inject_headers(headers, with_baggage(entries))
    assert set(headers) == {"baggage"}
    assert dict(baggage.get_all(BAG.extract_headers(headers))) == entries


def test_parse_is_lenient() -> None:
    """Whitespace around members and '=' is allowed; invalid members are skipped, not fatal."""
    parsed = parse_baggage(' a = 1 ,bad key=2, ,c=3;prop=x;flag, d="q", é=1, e=%41%20b')
    assert parsed == {"a": "1", "c": "3", "e": "A b"}


def test_properties_are_dropped() -> None:
    """Member properties after ';' are not part of the value."""
    assert parse_baggage("k=v;ttl=30") == {"k": "v"}


def test_plus_decodes_as_space_like_opentelemetry() -> None:
    """'+' in a received value is a space, as OpenTelemetry Python encodes it."""
    assert parse_baggage("k=a+b") == {"k": "a b"}


def test_extract_merges_over_existing_baggage() -> None:
    """Received entries are added to the incoming context's baggage; on a clash the header wins."""
    incoming = with_baggage({"keep": "1", "clash": "old"})
    ctx = BAG.extract_headers({"baggage": "clash=new,added=2"}, incoming)
    assert dict(baggage.get_all(ctx)) == {"keep": "1", "clash": "new", "added": "2"}
    assert dict(baggage.get_all(incoming)) == {"keep": "1", "clash": "old"}


def test_several_baggage_headers_are_combined() -> None:
    """Repeated baggage headers are combined with ','."""
    ctx = BAG.extract_headers([("baggage", "a=1"), ("Baggage", "b=2")])
    assert dict(baggage.get_all(ctx)) == {"a": "1", "b": "2"}


def test_too_many_members_drops_the_extra() -> None:
    """Members past the 180th are dropped; the first 180 are kept."""
    header = ",".join(f"k{i}=v" for i in range(MAX_BAGGAGE_MEMBERS + 20))
    parsed = parse_baggage(header)
    assert list(parsed) == [f"k{i}" for i in range(MAX_BAGGAGE_MEMBERS)]


def test_oversized_header_is_cut_at_a_member_boundary() -> None:
    """A header over 8192 bytes keeps the complete members within the limit and drops the rest."""
    member = "k{:03d}=" + "v" * 95  # 100 characters
    header = ",".join(member.format(i) for i in range(100))  # 10099 characters
    parsed = parse_baggage(header)
    assert len(parsed) == 81  # 81 members and 80 commas = 8180 bytes; the 82nd would pass 8192
    assert all(value == "v" * 95 for value in parsed.values())


def test_one_giant_member_is_dropped_without_error() -> None:
    """A single member longer than 8192 bytes yields nothing, and the traceparent still applies."""
    prop = Propagator()
    ctx = prop.extract_headers({"traceparent": TRACEPARENT, "baggage": "k=" + "v" * 20000})
    assert remote(ctx).is_valid
    assert dict(baggage.get_all(ctx)) == {}


def test_inject_respects_limits() -> None:
    """Injected baggage has at most 180 members and 8192 bytes; members that do not fit are left out."""
    many = {f"k{i}": "v" for i in range(300)}
    header = format_baggage(many)
    assert header.count(",") + 1 == MAX_BAGGAGE_MEMBERS
    big = {"a": "x" * 5000, "b": "y" * 5000, "c": "z"}
    header = format_baggage(big)
    assert len(header.encode()) <= MAX_BAGGAGE_BYTES
    assert parse_baggage(header) == {"a": "x" * 5000, "c": "z"}


def test_keys_and_values_with_delimiters_round_trip() -> None:
    """Keys holding '=' or ',' and values holding '=' or ',' are encoded so they read back unchanged."""
    entries = {"a=b": "c", "k": "a,b=c", "x,y": "=", "eq": "base64=="}
    assert parse_baggage(format_baggage(entries)) == entries
    assert format_baggage({"eq": "base64=="}) == "eq=base64=="  # '=' needs no encoding in a value


def test_inject_renders_non_string_values() -> None:
    """Non-string baggage values are rendered with str(); an empty key is left out."""
    assert format_baggage({"n": 3, "": "x", "f": 1.5}) == "n=3,f=1.5"


def test_no_baggage_no_header() -> None:
    """An empty baggage writes no header."""
    headers: dict[str, str] = {}
    BAG.inject_headers(headers, span_ctx())
    assert headers == {}


def test_inject_twice_from_the_same_baggage() -> None:
    """Injecting the same baggage again (the render is reused) gives the same header."""
    ctx = with_baggage({"a": "1"})
    first: dict[str, str] = {}
    second: dict[str, str] = {}
    BAG.inject_headers(first, ctx)
    BAG.inject_headers(second, ctx)
    other: dict[str, str] = {}
    BAG.inject_headers(other, with_baggage({"a": "2"}))
    assert first == second == {"baggage": "a=1"}
    assert other == {"baggage": "a=2"}
