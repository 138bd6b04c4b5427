"""W3C Baggage: the ``baggage`` header, lenient and bounded.

See https://www.w3.org/TR/baggage/. Extraction keeps every valid ``key=value`` list-member (optional
whitespace around ``=`` and ``,``; properties after ``;`` are dropped, since OpenTelemetry's Python API has no
place for them) and skips invalid ones. Limits: at most 180 members and 8192 bytes. An oversized header is
cut at the last complete member within 8192 characters and members past the 180th are dropped: it never fails.
Several ``baggage`` headers are combined with ``","``. Keys and values are percent-decoded with
``unquote_plus``, as OpenTelemetry Python does (it encodes a space as ``+``).

Injection percent-encodes what the grammar does not allow (a space becomes ``%20``, ``+`` becomes ``%2B``,
so both spec decoders and ``unquote_plus`` read it back) and keeps members in order while they fit the same
limits; a member that does not fit is left out.

>>> parse_baggage("userId=alice, isProduction=false;ttl=30, bad key=1")
{'userId': 'alice', 'isProduction': 'false'}
>>> format_baggage({"user id": "a+b", "n": 1})
'user%20id=a%2Bb,n=1'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote_plus

from opentelemetry.context import Context

from ._core import BAGGAGE_KEY, HeaderPairs, SpanFields

__all__ = [
    "BAGGAGE",
    "MAX_BAGGAGE_BYTES",
    "MAX_BAGGAGE_MEMBERS",
    "BaggageFormat",
    "format_baggage",
    "parse_baggage",
]

BAGGAGE = "baggage"
MAX_BAGGAGE_MEMBERS = 180
MAX_BAGGAGE_BYTES = 8192

# Every valid list-member, anchored at the start or a comma and ending at a comma or the end, so an invalid
# member is skipped whole: OWS key OWS "=" OWS value OWS [";" properties]. The key is an RFC 7230 token, the
# value baggage-octets (the W3C grammar, as OpenTelemetry checks it). One findall does the whole header.
_MEMBERS = re.compile(
    r"(?:^|,)[ \t]*([\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+)[ \t]*="
    r"[ \t]*([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*)[ \t]*(?:;[^,]*)?(?=,|\Z)"
).findall

# What may go on the wire unencoded: the grammar above minus "%" and "+", which decoders treat specially.
_KEY_SAFE = "!#$&'*^`|"
_VALUE_SAFE = "!#$&'()*/:<=>?@[]^`{|}"
_SAFE_KEY = r"[\x21\x23\x24\x26\x27\x2a\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+"
_SAFE_VALUE = r"[\x21\x23\x24\x26-\x2a\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"
_SAFE_KEY_MATCH = re.compile(_SAFE_KEY).fullmatch
_SAFE_VALUE_MATCH = re.compile(_SAFE_VALUE).fullmatch
# A whole header of plain members. Values may not hold "=" here, so every member has exactly one "=" and the
# split back into keys and values is unambiguous; a "," inside a value shows up in the comma count.
_SAFE_PLAIN_VALUE = r"[\x21\x23\x24\x26-\x2a\x2d-\x3a\x3c\x3e-\x5b\x5d-\x7e]*"
_SAFE_HEADER_MATCH = re.compile(f"{_SAFE_KEY}={_SAFE_PLAIN_VALUE}(?:,{_SAFE_KEY}={_SAFE_PLAIN_VALUE})*").fullmatch


def parse_baggage(value: str) -> dict[str, str]:
    """Parse a (combined) ``baggage`` value into name -> value, leniently and within the W3C limits.

    Args:
        value: The header value.

    Returns:
        The decoded valid members, in order, at most 180; a later duplicate key wins. Never raises.
    """
    if len(value) > MAX_BAGGAGE_BYTES:
        value = value[: MAX_BAGGAGE_BYTES + 1]
        value = value[: max(value.rfind(","), 0)]  # drop the member cut in the middle
    members: list[tuple[str, str]] = _MEMBERS(value)
    if len(members) > MAX_BAGGAGE_MEMBERS:
        del members[MAX_BAGGAGE_MEMBERS:]
    if "%" not in value and "+" not in value:
        return dict(members)
    return {
        (unquote_plus(key) if "%" in key or "+" in key else key): (
            unquote_plus(item) if "%" in item or "+" in item else item
        )
        for key, item in members
    }


def format_baggage(entries: Mapping[str, object]) -> str:
    """Render baggage entries as a ``baggage`` header value.

    Args:
        entries: Name -> value (values are rendered with ``str``).

    Returns:
        The header value (empty when nothing fits); at most 180 members and 8192 bytes. Members that do not
        fit are left out; later ones that do are kept.
    """
    if 0 < len(entries) <= MAX_BAGGAGE_MEMBERS:
        try:  # the common case: a few plain str entries, validated as one header
            header = ",".join([key + "=" + item for key, item in entries.items()])  # type: ignore[operator]
        except TypeError:  # a non-str key or value: render member by member below
            pass
        else:
            if (
                len(header) <= MAX_BAGGAGE_BYTES
                and header.count(",") == len(entries) - 1
                and _SAFE_HEADER_MATCH(header) is not None
            ):
                return header
    members: list[str] = []
    size = -1
    for key, item in entries.items():
        try:
            name = key if isinstance(key, str) else str(key)
            text = item if isinstance(item, str) else str(item)
        except Exception:  # an object whose str() fails is left out, like one that does not fit
            continue
        if _SAFE_KEY_MATCH(name) is None:
            if not name:
                continue
            name = quote(name, safe=_KEY_SAFE, errors="replace")
        if _SAFE_VALUE_MATCH(text) is None:
            text = quote(text, safe=_VALUE_SAFE, errors="replace")
        member = name + "=" + text
        if size + 1 + len(member) > MAX_BAGGAGE_BYTES:
            continue
        size += 1 + len(member)
        members.append(member)
        if len(members) >= MAX_BAGGAGE_MEMBERS:
            break
    return ",".join(members)


class BaggageFormat:
    """The ``baggage`` wire format."""

    name = "baggage"
    reads: Mapping[str, bool] = {BAGGAGE: True}
    fields: tuple[str, ...] = (BAGGAGE,)
    owned: tuple[str, ...] = (BAGGAGE,)

    def extract(self, values: Mapping[str, str], context: Context, updates: dict[str, object]) -> None:
        """Merge the header's entries over the baggage already in the context (as ``set_baggage`` would)."""
        header = values.get(BAGGAGE)
        if not header:
            return
        entries = parse_baggage(header)
        if not entries:
            return
        base = updates.get(BAGGAGE_KEY)
        if base is None:
            base = context.get(BAGGAGE_KEY)
        if isinstance(base, dict) and base:
            updates[BAGGAGE_KEY] = {**base, **entries}
        else:
            updates[BAGGAGE_KEY] = entries

    def __init__(self) -> None:
        # The last baggage rendered and its header. A request's baggage dict is shared, never mutated
        # (OpenTelemetry's set_baggage copies), by every outgoing call made under it: render it once.
        self._last: tuple[Mapping[str, object] | None, str] = (None, "")

    def inject(self, span: SpanFields | None, baggage: Mapping[str, object] | None, out: HeaderPairs) -> bool:
        """Append the ``baggage`` header when there is baggage that fits."""
        if not baggage:
            return False
        last, header = self._last
        if last is not baggage:
            header = format_baggage(baggage)
            self._last = (baggage, header)
        if not header:
            return False
        out.append((BAGGAGE, header))
        return True

    def __repr__(self) -> str:
        return "BaggageFormat()"
