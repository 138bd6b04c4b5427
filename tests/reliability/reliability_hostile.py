"""Hypothesis strategies for hostile propagation headers: gRPC metadata, ASGI header lists, HTTP/1.1 headers.

A *carrier* is one request's headers as ``(name, value)`` pairs. Values are near-misses of the real formats
(``traceparent``, ``tracestate``, ``baggage``, ``b3``, ``X-B3-*``) mixed with junk: wrong lengths and cases,
all-zero ids, unknown versions, duplicates, properties, percent-escapes, too many list members and oversized values
(built by repetition, so a 16 kB value costs hypothesis a handful of choices).

Drawing is what costs (tens of microseconds per choice), so one hypothesis example draws a :class:`Pool` of a few
values per header kind and the pool expands into ``CASES_PER_POOL`` distinct requests, in three flavours:

* gRPC metadata: what a gRPC client can put on the wire: lower-case keys, printable-ASCII values, arbitrary bytes
  under ``-bin`` keys.
* ASGI header lists: any bytes at all, any name case, non-ASCII text: what an ASGI server might hand over.
* HTTP/1.1: the ASGI lists cut down to what h11 lets through to the app (non-ASCII bytes included).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = [
    "CASES_PER_POOL",
    "POOL_SIZE",
    "PROPAGATION_KEYS",
    "Carrier",
    "HeaderPairs",
    "Pool",
    "pools",
    "to_http11",
]

PROPAGATION_KEYS = (
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-b3-parentspanid",
)
_BIN_KEYS = ("traceparent-bin", "tracestate-bin", "baggage-bin", "b3-bin", "grpc-trace-bin", "x-b3-traceid-bin")
_NOISE_KEYS = ("x-request-id", "x-custom", "accept-language")
# Up to ~16 kB per value: well past every W3C limit (8192) and gRPC's default metadata limit (8 KiB).
_MAX_REPEAT = 400
_MAX_VALUE = 20_000

_printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_ascii = st.text(_printable, max_size=40)
_hex_lower = "0123456789abcdef"
_hex_any = "0123456789abcdefABCDEF"


def _hex(size: int, alphabet: str = _hex_lower) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=size, max_size=size)


def _oversized(piece: st.SearchStrategy[str], separator: str = "") -> st.SearchStrategy[str]:
    """``piece`` repeated up to ``_MAX_REPEAT`` times (at most ``_MAX_VALUE`` characters): past every limit, cheaply."""
    return st.builds(lambda p, n: separator.join([p] * n)[:_MAX_VALUE], piece, st.integers(1, _MAX_REPEAT))


_trace_id = st.one_of(_hex(32), _hex(32, _hex_any), st.just("0" * 32), _hex(16), st.text(_hex_any, max_size=40))
_span_id = st.one_of(_hex(16), _hex(16, _hex_any), st.just("0" * 16), st.text(_hex_any, max_size=20))
_flags = st.one_of(_hex(2), st.sampled_from(["00", "01", "ff", "0", "001", "zz", ""]))
_version = st.sampled_from(["00", "01", "cc", "fe", "ff", "0", "000", "FF", "xx"])
_sep = st.sampled_from(["-", "-", "-", "_", "--", " - ", ""])

_traceparent = st.one_of(
    st.builds(
        lambda v, s1, t, s2, p, s3, f: f"{v}{s1}{t}{s2}{p}{s3}{f}",
        _version,
        _sep,
        _trace_id,
        _sep,
        _span_id,
        _sep,
        _flags,
    ),
    st.builds(
        lambda base, extra: base + extra,
        st.builds(lambda t, p, f: f"cc-{t}-{p}-{f}", _hex(32), _hex(16), _hex(2)),
        st.one_of(st.just(""), st.just("-"), _ascii.map(lambda s: "-" + s), _oversized(_ascii)),
    ),
    st.builds(
        lambda pad, value, pad2: pad + value + pad2,
        st.sampled_from(["", " ", "  "]),
        st.builds(lambda t, p: f"00-{t}-{p}-01", _hex(32), _hex(16)),
        st.sampled_from(["", " ", "  "]),
    ),
    _ascii,
    _oversized(_ascii),
)

_ts_key_chars = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
_ts_simple_key = st.builds(
    lambda first, rest: first + rest, st.sampled_from("abcz"), st.text(_ts_key_chars, max_size=20)
)
_ts_key = st.one_of(
    _ts_simple_key,
    _ts_simple_key,
    st.builds(lambda tenant, system: f"{tenant}@{system}", _ts_simple_key, _ts_simple_key),
    st.text(_printable, min_size=0, max_size=12),
    st.builds(lambda n: "k" * n, st.integers(200, 300)),
)
_ts_value_chars = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ",=")
_ts_value = st.one_of(
    st.text(_ts_value_chars, min_size=1, max_size=20),
    st.text(_ts_value_chars, min_size=1, max_size=20),
    _ascii,
    st.builds(lambda n: "v" * n, st.integers(200, 300)),
)
_ts_member = st.builds(lambda k, ows, v: f"{k}{ows}={v}", _ts_key, st.sampled_from(["", "", " "]), _ts_value)
_tracestate = st.one_of(
    st.lists(_ts_member, max_size=40).map(",".join),
    st.builds(lambda n, v: ",".join(f"k{i}={v}" for i in range(n)), st.integers(0, 400), _hex(4)),
    _oversized(_ts_member, ","),
    _ascii,
)

_bg_key_chars = "ABCXYZabcxyz0123456789!#$&'*+.^_`|~-"
_bg_value_chars = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
_bg_key = st.one_of(
    st.text(_bg_key_chars, min_size=1, max_size=20),
    st.text(_bg_key_chars, min_size=1, max_size=20),
    st.text(_printable, max_size=12),
    st.builds(lambda s: "%" + s, _hex(2, _hex_any)),
)
_bg_value = st.one_of(
    st.text(_bg_value_chars, max_size=30),
    st.text(_bg_value_chars, max_size=30),
    st.text(_printable, max_size=30),
    st.sampled_from(["%", "%2", "%zz", "%E2%82%AC", "%FF%FE", "a+b", "%00"]),
    st.builds(lambda n: "v" * n, st.integers(1_000, 9_000)),
)
_bg_member = st.builds(
    lambda k, o1, o2, v, props: f"{k}{o1}={o2}{v}{props}",
    _bg_key,
    st.sampled_from(["", " ", "\t"]).map(lambda s: s.replace("\t", " ")),
    st.sampled_from(["", " "]),
    _bg_value,
    st.one_of(st.just(""), st.just(";ttl=30"), st.just(";flag"), _ascii.map(lambda s: ";" + s.replace(",", ""))),
)
_baggage = st.one_of(
    st.lists(_bg_member, max_size=30).map(",".join),
    st.builds(lambda n, v: ",".join(f"k{i}={v}" for i in range(n)), st.integers(100, 500), _hex(6)),
    _oversized(_bg_member, ","),
    _ascii,
)

_b3 = st.one_of(
    st.builds(
        lambda t, p, s, parent: "-".join(part for part in (t, p, s, parent) if part is not None),
        _trace_id,
        _span_id,
        st.one_of(st.none(), st.sampled_from(["0", "1", "d", "2", "true", ""])),
        st.one_of(st.none(), _span_id),
    ),
    st.sampled_from(["0", "1", "d", "", "-", "--"]),
    _ascii,
    _oversized(_ascii),
)
_b3_multi_value = {
    "x-b3-traceid": _trace_id,
    "x-b3-spanid": _span_id,
    "x-b3-parentspanid": _span_id,
    "x-b3-sampled": st.sampled_from(["0", "1", "true", "false", "d", "", "yes", "11"]),
    "x-b3-flags": st.sampled_from(["0", "1", "", "2", "debug"]),
}
_b3_multi_pairs: st.SearchStrategy[list[tuple[str, str | bytes]]] = st.fixed_dictionaries(
    {}, optional=dict(_b3_multi_value)
).map(lambda d: list(d.items()))

_noise_pair = st.tuples(st.sampled_from(_NOISE_KEYS), _ascii)
_bin_pair = st.tuples(st.sampled_from(_BIN_KEYS), st.binary(max_size=64))

Carrier = list[tuple[str, str | bytes]]
"""One request's gRPC metadata."""
HeaderPairs = list[tuple[bytes, bytes]]
"""One request's ASGI ``scope["headers"]``."""

_name_case = st.sampled_from([str.lower, str.upper, str.title])
_odd_value = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=40).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.builds(lambda valid, junk: valid.encode() + junk, _traceparent, st.binary(min_size=1, max_size=8)),
    st.builds(lambda b, n: (b * n)[:_MAX_VALUE], st.binary(min_size=1, max_size=8), st.integers(1, _MAX_REPEAT)),
)
_odd_pair = st.builds(
    lambda name, case, value: (case(name).encode("latin-1"), value),
    st.sampled_from(PROPAGATION_KEYS + _BIN_KEYS),
    _name_case,
    _odd_value,
)

POOL_SIZE = 4
CASES_PER_POOL = 128  # every subset of the 7 header kinds
_KINDS = ("traceparent", "tracestate", "baggage", "b3", "b3multi", "other", "odd")


class Pool:
    """Hostile values hypothesis drew for one example, ``POOL_SIZE`` per header kind.

    ``grpc_carriers()`` / ``asgi_carriers()`` turn them into ``CASES_PER_POOL`` distinct requests: case ``i``
    carries the header kinds whose bit is set in ``i`` (all 128 subsets of the 7 kinds), each kind's value picked
    from the pool by a different stride, in forward or reverse order, sometimes with ``traceparent`` twice.
    """

    def __init__(self, values: dict[str, list[list[tuple[str, str | bytes]]]], odd: list[tuple[bytes, bytes]]) -> None:
        self._values = values
        self._odd = odd

    def grpc_carriers(self) -> list[Carrier]:
        """The gRPC metadata: printable-ASCII values, any bytes under ``-bin`` keys (the "odd" kind skipped)."""
        return [self._grpc_carrier(index) for index in range(CASES_PER_POOL)]

    def _grpc_carrier(self, index: int) -> Carrier:
        pairs: Carrier = []
        for bit, kind in enumerate(_KINDS[:-1]):
            if index >> bit & 1:
                pairs += self._values[kind][(index // (bit + 2) + bit) % POOL_SIZE]
        if index % 5 == 0:  # a repeated traceparent is invalid and must be ignored
            pairs += self._values["traceparent"][(index + 1) % POOL_SIZE]
        return pairs[::-1] if index % 3 == 0 else pairs

    def asgi_carriers(self) -> list[HeaderPairs]:
        """ASGI header lists: the gRPC carriers as bytes, plus odd names and values for the "odd" kind."""
        carriers = []
        for index, carrier in enumerate(self.grpc_carriers()):
            pairs = [(name.encode("latin-1"), _encode(value)) for name, value in carrier]
            if index >> (len(_KINDS) - 1) & 1:
                odd = self._odd[index % POOL_SIZE]
                pairs.insert(index % (len(pairs) + 1), odd)
            carriers.append(pairs)
        return carriers

    def http11_carriers(self) -> list[HeaderPairs]:
        """The ASGI carriers as HTTP/1.1 lets them through (see ``to_http11``)."""
        return [to_http11(carrier) for carrier in self.asgi_carriers()]


def _pool_of(strategy: st.SearchStrategy[list[tuple[str, str | bytes]]]) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, min_size=POOL_SIZE, max_size=POOL_SIZE)


def _single(name: str, value: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, str | bytes]]]:
    return value.map(lambda v: [(name, v)])


pools: st.SearchStrategy[Pool] = st.builds(
    lambda traceparent, tracestate, baggage, b3, b3multi, other, odd: Pool(
        {
            "traceparent": traceparent,
            "tracestate": tracestate,
            "baggage": baggage,
            "b3": b3,
            "b3multi": b3multi,
            "other": other,
        },
        odd,
    ),
    _pool_of(_single("traceparent", _traceparent)),
    _pool_of(_single("tracestate", _tracestate)),
    _pool_of(_single("baggage", _baggage)),
    _pool_of(_single("b3", _b3)),
    _pool_of(_b3_multi_pairs),
    _pool_of(st.one_of(_noise_pair.map(lambda p: [p]), _bin_pair.map(lambda p: [p]))),
    st.lists(_odd_pair, min_size=POOL_SIZE, max_size=POOL_SIZE),
)
"""One example's hostile values; each pool makes ``CASES_PER_POOL`` requests."""


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


_H11_DROP = bytes(range(0x00, 0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"


def to_http11(headers: HeaderPairs) -> HeaderPairs:
    """What HTTP/1.1 lets through: no control bytes, no whitespace at either end of a value."""
    return [(name, value.translate(None, _H11_DROP).strip(b" \t")) for name, value in headers]
