"""Carriers: reading header values out of, and writing them into, gRPC metadata, HTTP headers and ASGI scopes.

Reading is one pass over the carrier that keeps only the names the propagator wants (a small dict of
lower-case name -> value, repeated ``tracestate``/``baggage`` joined with ``","``); the wire formats parse that
dict and never touch the carrier. Each carrier shape has its own loop, written for the common case and
backed by a careful fallback, so a malformed carrier yields "no headers", never an exception.

* gRPC metadata: an iterable of ``(key, value)`` pairs (a list, a tuple of grpc's ``_Metadatum``,
  ``grpc.aio.Metadata``), a dict, or ``None``. Keys are compared lower-case; ``bytes`` values (``-bin``
  keys) are skipped.
* HTTP headers: ``httpx.Headers``, any ``Mapping[str, str]`` (looked up case-insensitively), or a list of
  ``(str | bytes, str | bytes)`` pairs. ``bytes`` are decoded as Latin-1 (non-ASCII never validates).
* ASGI: ``scope["headers"]``, a list of ``(bytes, bytes)`` pairs with lower-case names.

The OpenTelemetry ``Getter``/``Setter`` adapters for the same carriers live in
:mod:`hoptel.propagate.textmap`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from collections.abc import Set as AbstractSet
from itertools import islice
from typing import Any, TypeAlias, cast

import httpx

__all__ = [
    "MAX_ITEMS",
    "MAX_SKIP_NAMES",
    "MAX_SKIP_NAME_LENGTH",
    "HeadersCarrier",
    "Metadata",
    "MetadataList",
    "copy_metadata",
    "gather_asgi",
    "gather_headers",
    "gather_metadata",
    "merge_metadata",
    "set_headers",
    "text_of",
]

Metadata: TypeAlias = "Iterable[tuple[str, str | bytes]] | Mapping[str, str | bytes] | None"
"""gRPC metadata as grpcio hands it around: pairs, ``grpc.aio.Metadata``, or ``None``."""
MetadataList: TypeAlias = "list[tuple[str, str | bytes]]"
"""The metadata list that ``inject_metadata`` returns."""
HeadersCarrier: TypeAlias = (
    "httpx.Headers | Mapping[str, str] | Mapping[str, str | bytes] | Iterable[tuple[str | bytes, str | bytes]]"
)
"""HTTP headers: ``httpx.Headers``, a mapping, or ``(name, value)`` pairs of ``str`` or ``bytes``."""

# The longest value a parser reads (tracestate, see tracecontext.MAX_TRACESTATE_INPUT_LENGTH; baggage cuts at 8192
# itself): repeated headers are not concatenated beyond it.
_MAX_COMBINED = 32768
MAX_ITEMS = 4096
"""The careful (fallback) paths never look at more carrier items than this."""
MAX_SKIP_NAMES = 256
"""The most metadata keys a ``gather_metadata`` skip memo holds."""
MAX_SKIP_NAME_LENGTH = 64
"""Longer keys are never remembered in a skip memo."""
_NO_SKIP: frozenset[str] = frozenset()


def _add(found: dict[str, str], name: str, value: str, combine: bool) -> None:
    previous = found.get(name)
    if previous is None:
        found[name] = value
    elif combine and len(previous) <= _MAX_COMBINED:
        found[name] = previous + "," + value


def text_of(value: object) -> str | None:
    """``value`` as text: a ``str`` as is, bytes-like decoded as Latin-1, anything else ``None``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("latin-1")
    return None


def _gather_items(items: Iterable[Any], wanted: Mapping[str, bool], decode: bool) -> dict[str, str]:
    """The careful path: any item shape, ``str``/``bytes`` keys, list values; bounded; never raises."""
    found: dict[str, str] = {}
    try:
        for item in islice(items, MAX_ITEMS):
            try:
                key, value = item
            except (TypeError, ValueError):
                continue
            name = text_of(key)
            if name is None:
                continue
            name = name.lower()
            combine = wanted.get(name)
            if combine is None:
                continue
            values = value if isinstance(value, (list, tuple)) else (value,)
            for one in values:
                text = text_of(one) if decode else (one if isinstance(one, str) else None)
                if text is not None:
                    _add(found, name, text, combine)
    except Exception:  # a broken iterator: keep what was read
        return found
    return found


def gather_metadata(metadata: object, wanted: Mapping[str, bool], skip: set[str] | None = None) -> dict[str, str]:
    """Collect the ``wanted`` entries of gRPC metadata.

    Args:
        metadata: Pairs, ``grpc.aio.Metadata``, a dict, or ``None``; anything else counts as empty.
        wanted: Lower-case name -> whether repeated values are joined with ``","``.
        skip: Optional memo of keys already seen to be lower-case and not wanted, owned by the caller and used
            with the same ``wanted`` every time. It saves the ``islower()`` test (the costliest step for a key
            that is not wanted) on the names a service sees on every request (``user-agent``, ...); it grows
            by such keys up to :data:`MAX_SKIP_NAMES` names of at most :data:`MAX_SKIP_NAME_LENGTH` characters.

    Returns:
        Lower-case name -> value. ``bytes`` values are skipped.
    """
    if not metadata:
        return {}
    if isinstance(metadata, dict):
        metadata = metadata.items()
    memo: AbstractSet[str] = _NO_SKIP if skip is None else skip
    found: dict[str, str] = {}
    try:
        for key, value in metadata:  # type: ignore[attr-defined]  # anything else is caught below
            combine = wanted.get(key)
            if combine is None:
                if key in memo:
                    continue
                if key.islower():
                    if skip is not None and len(skip) < MAX_SKIP_NAMES and _remember(key):
                        skip.add(key)
                    continue
                key = key.lower()
                combine = wanted.get(key)
                if combine is None:
                    continue
            if isinstance(value, str):
                if key not in found:
                    found[key] = value
                elif combine and len(previous := found[key]) <= _MAX_COMBINED:
                    found[key] = previous + "," + value
    except Exception:
        return _gather_items(cast("Iterable[Any]", metadata), wanted, decode=False)
    return found


def _remember(key: object) -> bool:
    """Whether ``key`` (lower-case, not wanted) may go into a skip memo: a short exact ``str``."""
    return type(key) is str and len(key) <= MAX_SKIP_NAME_LENGTH


def gather_headers(headers: object, wanted: Mapping[str, bool], wanted_bytes: Mapping[bytes, str]) -> dict[str, str]:
    """Collect the ``wanted`` HTTP headers.

    Args:
        headers: ``httpx.Headers``, a mapping, or pairs of ``str``/``bytes``; anything else counts as empty.
        wanted: Lower-case name -> whether repeated values are joined with ``","``.
        wanted_bytes: The same names encoded, lower-case bytes -> name.

    Returns:
        Lower-case name -> value.
    """
    if isinstance(headers, httpx.Headers):
        # httpx keeps (raw key, lower-case key, value) byte triples; reading them directly is ~5x faster
        # than its decoding accessors. Any surprise in that layout falls back to the public API.
        found: dict[str, str] = {}
        try:
            for _, key, value in headers._list:
                name = wanted_bytes.get(key)
                if name is not None:
                    _add(found, name, value.decode("latin-1"), wanted[name])
        except Exception:
            return _gather_items(headers.multi_items(), wanted, decode=True)
        return found
    if not headers:
        return {}
    if isinstance(headers, Mapping):
        return _gather_items(headers.items(), wanted, decode=True)
    if isinstance(headers, (str, bytes)):
        return {}
    return _gather_items(cast("Iterable[Any]", headers), wanted, decode=True)


def gather_asgi(scope: object, wanted: Mapping[str, bool], wanted_bytes: Mapping[bytes, str]) -> dict[str, str]:
    """Collect the ``wanted`` headers of an ASGI ``scope`` (``scope["headers"]``: lower-case byte pairs).

    Args:
        scope: The ASGI connection scope; anything else counts as empty.
        wanted: Lower-case name -> whether repeated values are joined with ``","``.
        wanted_bytes: The same names encoded, lower-case bytes -> name.

    Returns:
        Lower-case name -> value.
    """
    try:
        headers = scope.get("headers")  # type: ignore[attr-defined]  # not a mapping is caught below
    except Exception:
        return {}
    if not headers:
        return {}
    found: dict[str, str] = {}
    try:
        for key, value in headers:
            if key in wanted_bytes:  # `in` first: most headers are not wanted, and it costs less than .get()
                name = wanted_bytes[key]
                if name in found:
                    _add(found, name, value.decode("latin-1"), wanted[name])
                else:  # the first occurrence, inlined
                    found[name] = value.decode("latin-1")
    except Exception:
        return _gather_items(headers, wanted, decode=True)
    return found


def merge_metadata(
    metadata: object, ours: list[tuple[str, str]], owned: frozenset[str], keep: set[str] | None = None
) -> MetadataList:
    """Return a new metadata list: the caller's entries in order, minus ``owned`` names, then ``ours``.

    Args:
        metadata: The caller's metadata (pairs, ``grpc.aio.Metadata``, a dict, or ``None``); not modified.
        ours: The pairs to add; the list is reused for the result when there is no caller metadata.
        owned: Lower-case names that ours replace (compared case-insensitively).
        keep: Optional memo of keys already seen to be lower-case and not ``owned``, owned by the caller and used
            with the same ``owned`` every time; it saves their ``islower()`` test and is bounded as
            ``gather_metadata``'s skip memo.

    Returns:
        A new list.
    """
    result: MetadataList = ours  # type: ignore[assignment]  # list is invariant; no cast(): a call per hop
    if not metadata:
        return result
    if isinstance(metadata, dict):
        metadata = list(metadata.items())
    try:
        memo: AbstractSet[str] = _NO_SKIP if keep is None else keep
        kept = []
        for item in metadata:  # type: ignore[attr-defined]  # anything else is caught below
            key = item[0]  # a loop, not a comprehension: in CPython 3.11 that is a function call more
            if key in memo:
                kept.append(item)
            elif key not in owned:
                if key.islower():
                    kept.append(item)
                    if keep is not None and len(keep) < MAX_SKIP_NAMES and _remember(key):
                        keep.add(key)
                elif key.lower() not in owned:
                    kept.append(item)
    except Exception:
        kept = []
        try:
            for item in islice(cast("Iterable[Any]", metadata), MAX_ITEMS):
                try:
                    key = item[0]
                    if isinstance(key, str) and key.lower() in owned:
                        continue
                except Exception:  # keep what we cannot read: it is the caller's
                    pass
                kept.append(item)
        except Exception:  # a broken iterator: keep what was read
            pass
    kept += result
    return kept


def copy_metadata(metadata: object) -> MetadataList:
    """Return the caller's metadata as a new list (``[]`` for ``None`` or anything unreadable)."""
    if not metadata:
        return []
    try:
        if isinstance(metadata, dict):
            return list(metadata.items())
        return list(cast("Iterable[tuple[str, str | bytes]]", metadata))
    except Exception:
        return []


def set_headers(
    headers: object, ours: list[tuple[str, str]], owned: frozenset[str], owned_bytes: frozenset[bytes] = frozenset()
) -> None:
    """Write ``ours`` into HTTP headers in place, replacing any ``owned`` names already there.

    Args:
        headers: ``httpx.Headers`` (set with ``headers[name] = value``), a ``MutableMapping[str, str]``, or a
            list of ``(str | bytes, str | bytes)`` pairs (bytes names get bytes pairs).
        ours: The pairs to write.
        owned: Lower-case names that ours replace (compared case-insensitively).
        owned_bytes: The same names, encoded (a speed-up for ``httpx.Headers``; derived when empty).

    Raises:
        TypeError: ``headers`` is none of the supported mutable carriers.
    """
    if isinstance(headers, httpx.Headers):
        if (
            len(ours) == 1
            and owned_bytes
            and type(headers) is httpx.Headers
            and _append_fresh(headers, ours[0], owned_bytes)
        ):
            return
        # Names we own but do not write this time (a stale tracestate next to a new traceparent) must go.
        stale = _stale_httpx(headers, ours, owned, owned_bytes) if len(owned) > len(ours) else ()
        for name in stale:
            del headers[name]
        for name, value in ours:
            headers[name] = value
    elif isinstance(headers, list):
        try:
            use_bytes = bool(headers) and isinstance(headers[0][0], (bytes, bytearray))
        except Exception:  # an odd first item: write str pairs
            use_bytes = False
        kept = [item for item in headers if not _owned_pair(item, owned)]
        if use_bytes:
            kept += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in ours]
        else:
            kept += ours
        headers[:] = kept
    elif isinstance(headers, MutableMapping):
        mapping = cast("MutableMapping[str, str]", headers)
        for key in [key for key in mapping if isinstance(key, str) and key.lower() in owned]:
            del mapping[key]
        for name, value in ours:
            mapping[name] = value
    else:
        raise TypeError(f"cannot inject into {type(headers).__name__}: expected httpx.Headers, a dict or a list")


def _append_fresh(headers: httpx.Headers, pair: tuple[str, str], owned_bytes: frozenset[bytes]) -> bool:
    """Add ``pair`` as ``headers[name] = value`` would when no owned header is there yet; False otherwise.

    The common case of a client hop (a request without trace headers): one pass over httpx's (raw, lower-case,
    value) triples, then the triple its ``__setitem__`` would append, without its second pass and its
    comprehension. Any surprise in httpx's internals answers False, and the public API does the work.
    """
    try:
        items = headers._list
        for _, key, _ in items:
            if key in owned_bytes:
                return False
        name, value = pair
        encoding = headers._encoding or "utf-8"  # what Headers.__setitem__ encodes with
        set_key = name.encode(encoding)
        lookup_key = set_key.lower()
        if lookup_key not in owned_bytes:  # an encoding that is not ASCII-compatible: let httpx compare
            return False
        entry = (set_key, lookup_key, value.encode(encoding))
    except Exception:
        return False
    items.append(entry)
    return True


def _stale_httpx(
    headers: httpx.Headers, ours: list[tuple[str, str]], owned: frozenset[str], owned_bytes: frozenset[bytes]
) -> list[str]:
    if owned_bytes:
        try:  # one pass over httpx's (raw, lower-case, value) triples; nothing owned is the common case
            for _, key, _ in headers._list:
                if key in owned_bytes:
                    break
            else:
                return []
        except Exception:  # httpx changed its internals: ask the public API below
            pass
    written = {name for name, _ in ours}
    return [name for name in owned if name not in written and name in headers]


def _owned_pair(item: object, owned: frozenset[str]) -> bool:
    try:
        key = text_of(item[0])  # type: ignore[index]  # anything else is kept
    except Exception:
        return False
    return key is not None and key.lower() in owned
