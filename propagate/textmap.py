"""OpenTelemetry ``Getter``/``Setter`` adapters for gRPC metadata, HTTP headers and ASGI scopes.

They let OpenTelemetry's own propagators read and write hoptel's carriers (for instance
``TraceContextTextMapPropagator().extract(metadata, getter=MetadataGetter())``), and
:meth:`hoptel.propagate.Propagator.extract` / ``inject`` recognise them and take their fast paths. Matching is
case-insensitive; like the fast paths, they never raise on odd carrier content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any, cast

import httpx
from opentelemetry.propagators.textmap import Getter, Setter

from .carriers import MAX_ITEMS, HeadersCarrier, Metadata, MetadataList, set_headers, text_of

__all__ = ["ASGIGetter", "HeadersGetter", "HeadersSetter", "MetadataGetter", "MetadataSetter"]


class MetadataGetter(Getter[Metadata]):
    """OpenTelemetry ``Getter`` for gRPC metadata (case-insensitive keys, ``bytes`` values skipped)."""

    def get(self, carrier: Metadata, key: str) -> list[str] | None:
        """Return every ``str`` value of ``key``, or ``None`` when there is none."""
        found = _all_values(carrier, key.lower(), decode=False)
        return found or None

    def keys(self, carrier: Metadata) -> list[str]:
        """Return the lower-case keys, in order."""
        return _all_keys(carrier)


class HeadersGetter(Getter[HeadersCarrier]):
    """OpenTelemetry ``Getter`` for HTTP headers: ``httpx.Headers``, mappings, or ``(name, value)`` pairs."""

    def get(self, carrier: HeadersCarrier, key: str) -> list[str] | None:
        """Return every value of ``key`` (case-insensitive), or ``None`` when there is none."""
        if isinstance(carrier, httpx.Headers):
            return carrier.get_list(key) or None
        found = _all_values(carrier, key.lower(), decode=True)
        return found or None

    def keys(self, carrier: HeadersCarrier) -> list[str]:
        """Return the lower-case header names, in order."""
        if isinstance(carrier, httpx.Headers):
            return list(carrier.keys())
        return _all_keys(carrier)


class ASGIGetter(Getter[Mapping[str, Any]]):
    """OpenTelemetry ``Getter`` for an ASGI scope (``scope["headers"]``)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        """Return every value of header ``key``, or ``None`` when there is none."""
        try:
            headers = carrier.get("headers")
        except Exception:
            return None
        found = _all_values(headers, key.lower(), decode=True)
        return found or None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        """Return the header names, in order."""
        try:
            headers = carrier.get("headers")
        except Exception:
            return []
        return _all_keys(headers)


class MetadataSetter(Setter[MetadataList]):
    """OpenTelemetry ``Setter`` for a metadata list: replaces ``key`` (case-insensitively), appends lower-case."""

    def set(self, carrier: MetadataList, key: str, value: str) -> None:
        """Replace any ``key`` entries in ``carrier`` with ``(key.lower(), value)``."""
        name = key.lower()
        carrier[:] = [item for item in carrier if not _named(item, name)]
        carrier.append((name, value))


class HeadersSetter(Setter[Any]):
    """OpenTelemetry ``Setter`` for ``httpx.Headers``, ``MutableMapping[str, str]`` or a list of pairs."""

    def set(self, carrier: Any, key: str, value: str) -> None:
        """Set header ``key`` (lower-cased) to ``value``, replacing it case-insensitively."""
        name = key.lower()
        set_headers(carrier, [(name, value)], frozenset((name,)))


def _pairs(carrier: object) -> Iterable[Any]:
    if not carrier:
        return ()
    if isinstance(carrier, httpx.Headers):
        return carrier.multi_items()
    if isinstance(carrier, Mapping):
        return carrier.items()
    if isinstance(carrier, (str, bytes)):
        return ()
    return cast("Iterable[Any]", carrier)


def _all_values(carrier: object, name: str, decode: bool) -> list[str]:
    found: list[str] = []
    try:
        for item in islice(_pairs(carrier), MAX_ITEMS):
            try:
                key, value = item
            except (TypeError, ValueError):
                continue
            text_key = text_of(key)
            if text_key is None or text_key.lower() != name:
                continue
            for one in value if isinstance(value, (list, tuple)) else (value,):
                text = text_of(one) if decode else (one if isinstance(one, str) else None)
                if text is not None:
                    found.append(text)
    except Exception:  # a broken carrier: keep what was read
        return found
    return found


def _all_keys(carrier: object) -> list[str]:
    keys: list[str] = []
    try:
        for item in islice(_pairs(carrier), MAX_ITEMS):
            try:
                key = text_of(item[0])
            except Exception:
                continue
            if key is not None:
                keys.append(key.lower())
    except Exception:
        return keys
    return keys


def _named(item: object, name: str) -> bool:
    try:
        key = text_of(item[0])  # type: ignore[index]  # anything else is kept
    except Exception:
        return False
    return key is not None and key.lower() == name
