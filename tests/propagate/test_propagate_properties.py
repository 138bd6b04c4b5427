"""Property-based tests: extraction never raises, agrees with reference parsers, and ignores invalid input.

Extraction never raises on any carrier content, matches independent reference parsers, and leaves the
incoming context unchanged for invalid input; injection and baggage keep their bounds.

Example counts default to 300 per property; set HOPTEL_HYPOTHESIS_EXAMPLES to run more (e.g. 100000).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry.context import Context
from propagate_support import SPAN_HEX, TRACE_HEX, remote, span_ctx, with_baggage

from hoptel.propagate import (
    MAX_BAGGAGE_BYTES,
    MAX_BAGGAGE_MEMBERS,
    MetadataGetter,
    Propagator,
    format_baggage,
    parse_baggage,
)

EXAMPLES = int(os.environ.get("HOPTEL_HYPOTHESIS_EXAMPLES", "300"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ALL = Propagator(["tracecontext", "baggage", "b3", "b3multi"])
TC = Propagator(["tracecontext"])
B3 = Propagator(["b3"])
B3MULTI = Propagator(["b3multi"])
NAMES = ["traceparent", "tracestate", "baggage", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"]
LOWER_HEX = frozenset("0123456789abcdef")
ANY_HEX = LOWER_HEX | frozenset("ABCDEF")
DELIMITERS = 'ab=,; %+"\\\té'
INCOMING = with_baggage({"pre": "existing"}, span_ctx(trace_id=7, span_id=9))

# -- strategies ----------------------------------------------------------------------------------------------

hexes = st.text(alphabet="0123456789abcdefABCDEF", min_size=0, max_size=34)
everything = st.characters(codec=None, categories=None)  # includes surrogates and control characters
odd_text = st.one_of(
    st.text(),
    st.text(alphabet=everything, max_size=40),
    st.text(alphabet=" \t-,;=0123456789abcdefABCDEFxd%+é\x00\n", max_size=80),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "-", ",", "0", "é", "=", "k=v,"]), st.integers(100, 20000)),
)


@st.composite
def near_traceparent(draw: st.DrawFn) -> str:
    """Valid traceparents and small mutations of them (case, length, version, zeros, separators, padding)."""
    version = draw(st.sampled_from(["00", "01", "cc", "fe", "ff", "0", "000", "0A", "g0"]))
    trace_hex = draw(st.one_of(st.just(TRACE_HEX), st.just("0" * 32), hexes))
    span_hex = draw(st.one_of(st.just(SPAN_HEX), st.just("0" * 16), hexes))
    flags = draw(st.one_of(st.sampled_from(["00", "01", "03", "ff", "0F", "1", "001"]), hexes))
    sep = draw(st.sampled_from(["-", "-", "-", "_", ""]))
    tail = draw(st.sampled_from(["", "", "-", "-future", ".x", "-\n", " "]))
    pad = draw(st.sampled_from(["", " ", "\t", "\n"]))
    return pad + sep.join([version, trace_hex, span_hex, flags]) + tail + pad


@st.composite
def near_b3(draw: st.DrawFn) -> str:
    """Valid b3 single values and mutations of them."""
    trace_hex = draw(st.one_of(st.just(TRACE_HEX), st.just(TRACE_HEX[16:]), st.just("0" * 32), hexes))
    parts = [trace_hex, draw(st.one_of(st.just(SPAN_HEX), st.just("0" * 16), hexes))]
    for extra in draw(
        st.lists(st.one_of(st.sampled_from(["0", "1", "d", "true", "", "D"]), st.just(SPAN_HEX), hexes), max_size=3)
    ):
        parts.append(extra)
    return draw(st.sampled_from(["", " "])) + "-".join(parts)


header_value = st.one_of(odd_text, near_traceparent(), near_b3(), st.binary(max_size=80), st.none(), st.integers())
header_name = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(str.upper),
    st.sampled_from(NAMES).map(lambda name: name + "-bin"),
    st.sampled_from(NAMES).map(str.encode),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.integers(),
    st.none(),
)
odd_item = st.one_of(
    st.tuples(header_name, header_value),
    st.tuples(header_name),
    st.tuples(header_name, header_value, header_value),
    header_value,
)
odd_pairs = st.lists(odd_item, max_size=8)

# -- references: independent, split-based readings of the specs ---------------------------------------------


def ref_traceparent(value: str) -> tuple[int, int, int] | None:
    """W3C traceparent validity, written independently of the implementation."""
    if len(value) > 512:
        return None
    parts = value.strip(" \t").split("-")
    if len(parts) < 4:
        return None
    version, trace_hex, span_hex, flags = parts[:4]
    if len(version) != 2 or not set(version) <= LOWER_HEX or version == "ff":
        return None
    if version == "00" and len(parts) != 4:
        return None
    if (len(trace_hex), len(span_hex), len(flags)) != (32, 16, 2):
        return None
    if not set(trace_hex + span_hex + flags) <= LOWER_HEX:
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(flags, 16)


def ref_b3_single(value: str) -> tuple[int, int, bool] | None:
    """B3 single-header validity, written independently of the implementation."""
    if len(value) > 128:
        return None
    parts = value.strip(" \t").split("-")
    if not 2 <= len(parts) <= 4:
        return None
    trace_hex, span_hex = parts[0], parts[1]
    if len(trace_hex) not in (16, 32) or len(span_hex) != 16 or not set(trace_hex + span_hex) <= ANY_HEX:
        return None
    sampled = True
    if len(parts) >= 3:
        if parts[2] not in ("0", "1", "d"):
            return None
        sampled = parts[2] != "0"
    if len(parts) == 4 and (len(parts[3]) != 16 or not set(parts[3]) <= ANY_HEX):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, sampled


def _unchanged(result: Context, incoming: Context) -> None:
    assert result is incoming or (
        remote(result) == remote(incoming) and dict(baggage.get_all(result)) == dict(baggage.get_all(incoming))
    )


# -- properties ------------------------------------------------------------------------------------------------


@SETTINGS
@given(items=odd_pairs)
def test_extract_never_raises_on_any_carrier(items: list[Any]) -> None:
    """Every extract method returns a Context for any list, dict or scope content, never raising."""
    as_dict = dict(item for item in items if isinstance(item, tuple) and len(item) == 2)
    for prop in (ALL, TC):
        for ctx in (
            prop.extract_metadata(items),
            prop.extract_headers(items),
            prop.extract_asgi({"headers": items}),
            prop.extract(items, getter=MetadataGetter()),
            prop.extract_metadata(as_dict),
            prop.extract_headers(as_dict),
        ):
            assert isinstance(ctx, Context)


@SETTINGS
@given(carrier=st.one_of(st.none(), st.integers(), st.text(), st.binary(), st.floats(), header_value, odd_item))
def test_extract_never_raises_on_non_carriers(carrier: Any) -> None:
    """Things that are not carriers at all are treated as carriers without our headers."""
    incoming = Context()
    assert isinstance(ALL.extract_metadata(carrier, incoming), Context)
    assert isinstance(ALL.extract_headers(carrier, incoming), Context)
    assert ALL.extract_asgi(carrier, incoming) is incoming


@SETTINGS
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(NAMES), st.text(max_size=10)),
            st.one_of(odd_text, near_traceparent(), near_b3()),
        ),
        max_size=6,
    )
)
def test_httpx_headers_never_raise(pairs: list[tuple[str, str]]) -> None:
    """httpx.Headers with any (encodable) content extracts without error."""
    try:
        headers = httpx.Headers(pairs)
    except (UnicodeEncodeError, TypeError):
        return  # httpx itself refuses these
    assert isinstance(ALL.extract_headers(headers, INCOMING), Context)


@SETTINGS
@given(value=st.one_of(near_traceparent(), odd_text))
def test_traceparent_matches_reference_and_invalid_leaves_context_unchanged(value: str) -> None:
    """Extraction agrees with the reference reading; an invalid traceparent leaves the context unchanged."""
    expected = ref_traceparent(value)
    raw = value.encode("utf-8", "surrogatepass")  # non-ASCII never validates, whatever the decoding
    for result in (
        TC.extract_headers({"traceparent": value}, INCOMING),
        TC.extract_metadata([("traceparent", value)], INCOMING),
        TC.extract_asgi({"headers": [(b"traceparent", raw)]}, INCOMING),
    ):
        if expected is None:
            _unchanged(result, INCOMING)
        else:
            sc = remote(result)
            assert (sc.trace_id, sc.span_id, int(sc.trace_flags), sc.is_remote) == (*expected, True)
            assert dict(baggage.get_all(result)) == {"pre": "existing"}


@SETTINGS
@given(value=st.one_of(near_b3(), odd_text))
def test_b3_single_matches_reference_and_invalid_leaves_context_unchanged(value: str) -> None:
    """b3 single extraction agrees with the reference; invalid values leave the context unchanged."""
    expected = ref_b3_single(value)
    result = B3.extract_headers({"b3": value}, INCOMING)
    if expected is None:
        _unchanged(result, INCOMING)
    else:
        sc = remote(result)
        assert (sc.trace_id, sc.span_id, sc.trace_flags.sampled) == expected


@SETTINGS
@given(
    trace_hex=st.one_of(hexes, odd_text), span_hex=st.one_of(hexes, odd_text), sampled=st.one_of(st.none(), odd_text)
)
def test_b3_multi_invalid_ids_leave_context_unchanged(trace_hex: str, span_hex: str, sampled: str | None) -> None:
    """X-B3 headers with invalid ids leave the context unchanged; valid ones give those ids."""
    headers = {"x-b3-traceid": trace_hex, "x-b3-spanid": span_hex}
    if sampled is not None:
        headers["x-b3-sampled"] = sampled
    result = B3MULTI.extract_headers(headers, INCOMING)
    t, s = trace_hex.strip(" \t"), span_hex.strip(" \t")
    valid = len(t) in (16, 32) and len(s) == 16 and set(t + s) <= ANY_HEX and int(t or "0", 16) and int(s or "0", 16)
    if not valid:
        _unchanged(result, INCOMING)
    else:
        assert (remote(result).trace_id, remote(result).span_id) == (int(t, 16), int(s, 16))


@SETTINGS
@given(value=st.one_of(odd_text, st.lists(st.text(max_size=20), max_size=40).map(",".join)))
def test_tracestate_never_discards_traceparent(value: str) -> None:
    """Whatever the tracestate, a valid traceparent is kept; a kept tracestate has at most 32 members."""
    result = TC.extract_headers({"traceparent": f"00-{TRACE_HEX}-{SPAN_HEX}-01", "tracestate": value})
    sc = remote(result)
    assert sc.is_valid
    assert len(sc.trace_state) <= 32


@SETTINGS
@given(value=odd_text)
def test_baggage_parse_is_bounded(value: str) -> None:
    """Parsing any baggage header never raises and keeps at most 180 members."""
    parsed = parse_baggage(value)
    assert len(parsed) <= MAX_BAGGAGE_MEMBERS
    ctx = ALL.extract_headers({"baggage": value}, INCOMING)
    assert baggage.get_baggage("pre", ctx) == "existing"


@SETTINGS
@given(
    entries=st.dictionaries(
        st.one_of(st.text(min_size=1, max_size=20), st.text(alphabet=DELIMITERS, min_size=1, max_size=8)),
        st.one_of(st.text(max_size=30), st.text(alphabet=DELIMITERS, max_size=8)),
        max_size=12,
    )
)
def test_baggage_round_trip(entries: dict[str, str]) -> None:
    """Any text keys and values survive format then parse (they are percent-encoded as needed)."""
    assert parse_baggage(format_baggage(entries)) == entries


@SETTINGS
@given(
    entries=st.dictionaries(
        st.one_of(st.text(alphabet=everything, max_size=30), st.integers()),
        st.one_of(st.text(alphabet=everything, max_size=300), st.integers(), st.floats()),
        max_size=250,
    )
)
def test_baggage_format_is_bounded(entries: dict[Any, Any]) -> None:
    """Formatting any baggage never raises and stays within 180 members and 8192 bytes."""
    header = format_baggage(entries)
    assert len(header.encode("utf-8", "surrogatepass")) <= MAX_BAGGAGE_BYTES
    assert not header or header.count(",") + 1 <= MAX_BAGGAGE_MEMBERS
    assert header.isascii()


@SETTINGS
@given(items=odd_pairs)
def test_inject_metadata_keeps_callers_entries(items: list[Any]) -> None:
    """inject_metadata never raises on odd metadata, keeps the caller's other entries in order, appends ours."""
    before = list(items)
    out = ALL.inject_metadata(items, with_baggage({"k": "v"}, span_ctx()))
    ours = ["traceparent", "baggage", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"]
    owned = {*ours, "tracestate", "x-b3-flags", "x-b3-parentspanid"}
    assert items == before
    assert [key for key, _ in out[-len(ours) :]] == ours

    def replaced(item: Any) -> bool:
        try:
            return isinstance(item[0], str) and item[0].lower() in owned
        except Exception:
            return False

    assert out[: -len(ours)] == [item for item in items if not replaced(item)]
