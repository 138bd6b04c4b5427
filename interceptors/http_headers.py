"""Header allow-lists: which request and response header values an HTTP span records, and under which names.

A value is recorded only when its header is named in an allow-list, as the attribute
``http.request.header.<name>`` or ``http.response.header.<name>`` holding a list of strings (one entry per
occurrence). ``authorization``, ``cookie``, ``set-cookie``, ``proxy-authorization`` and the other
:data:`~hoptel.interceptors.http_names.NEVER_RECORDED_HEADERS` are dropped from every list, even when named.

The attribute names are built once per integration, so recording costs one lookup per header on the hot path and
nothing at all when the list is empty.

>>> allow = HeaderAllowList("http.request.header", ["X-Request-Id", "Authorization"])
>>> allow.names
('x-request-id',)
>>> allow.from_pairs([(b"x-request-id", b"abc"), (b"authorization", b"Bearer s3cret")])
{'http.request.header.x-request-id': ['abc']}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from hoptel.interceptors.http_names import allowed_header_names

__all__ = ["REQUEST_HEADER_PREFIX", "RESPONSE_HEADER_PREFIX", "HeaderAllowList", "MultiHeaders"]

REQUEST_HEADER_PREFIX = "http.request.header"
RESPONSE_HEADER_PREFIX = "http.response.header"


class MultiHeaders(Protocol):
    """What is read from an ``httpx.Headers``: every value of one (case-insensitive) header name."""

    def get_list(self, key: str, split_commas: bool = False) -> list[str]:
        """All values of ``key``, in order."""
        ...


class HeaderAllowList:
    """The headers one side of a hop may record, with their precomputed attribute names.

    Args:
        prefix: ``http.request.header`` or ``http.response.header``.
        names: The allow-list as the user wrote it (any case); never-recorded headers are removed.

    Attributes:
        names: The lower-cased header names that are recorded, sorted.
    """

    __slots__ = ("_by_raw_name", "_keys", "names")

    def __init__(self, prefix: str, names: Iterable[str] | None) -> None:
        self.names = allowed_header_names(names)
        self._keys = tuple((name, f"{prefix}.{name}") for name in self.names)
        self._by_raw_name = {name.encode("latin-1"): key for name, key in self._keys}

    def __bool__(self) -> bool:
        return bool(self.names)

    def __repr__(self) -> str:
        return f"HeaderAllowList({list(self.names)!r})"

    def from_headers(self, headers: MultiHeaders) -> dict[str, list[str]]:
        """Attributes for the allowed headers present in ``headers`` (an ``httpx.Headers``)."""
        attributes: dict[str, list[str]] = {}
        for name, key in self._keys:
            values = headers.get_list(name)
            if values:
                attributes[key] = values
        return attributes

    def from_pairs(self, headers: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
        """Attributes for the allowed headers among ASGI ``(name, value)`` byte pairs (names in any case)."""
        attributes: dict[str, list[str]] = {}
        by_raw_name = self._by_raw_name
        for name, value in headers:
            key = by_raw_name.get(name) or by_raw_name.get(name.lower())
            if key is not None:
                attributes.setdefault(key, []).append(value.decode("latin-1"))
        return attributes
