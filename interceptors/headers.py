"""Header allow-lists: which request and response header (or gRPC metadata) values a span records, under which names.

A value is recorded only when its header is allowed, as the attribute ``http.request.header.<name>`` or
``http.response.header.<name>`` (``rpc.grpc.request.metadata.<key>`` for gRPC) holding a list of strings, one entry
per occurrence, the name in lower case. A header is allowed when it is named (the ``record_*_headers=`` options,
any case) or when its whole name matches one of the patterns (the ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*``
regular expressions, ignoring case, as the official instrumentations match them). A captured header whose name
contains a match of a sanitize pattern is recorded as ``[REDACTED]``. ``authorization``, ``cookie``, ``set-cookie``,
``proxy-authorization`` and the other :data:`~hoptel.interceptors.http.names.NEVER_RECORDED_HEADERS` are never
recorded, whatever names or patterns say.

The attribute names are built once per integration: with names only, recording costs one lookup per header; with
patterns, each header name is matched once and the decision kept (for up to :data:`MAX_DECISIONS` names); with
neither, nothing at all.

>>> allow = HeaderAllowList("http.request.header", ["X-Request-Id", "Authorization"])
>>> allow.names
('x-request-id',)
>>> allow.from_pairs([(b"x-request-id", b"abc"), (b"authorization", b"Bearer s3cret")])
{'http.request.header.x-request-id': ['abc']}
>>> HeaderAllowList("http.request.header", (), patterns=["x-.*"], sanitize=["token"]).from_text_pairs(
...     [("x-tenant", "acme"), ("x-auth-token", "s3cret"), ("x-session-token", "s3cret"), ("accept", "*/*")])
{'http.request.header.x-tenant': ['acme'], 'http.request.header.x-session-token': ['[REDACTED]']}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from hoptel.conventions import compile_patterns
from hoptel.interceptors.http.names import NEVER_RECORDED_HEADERS, allowed_header_names

__all__ = [
    "MAX_DECISIONS",
    "REDACTED",
    "REQUEST_HEADER_PREFIX",
    "REQUEST_METADATA_PREFIX",
    "RESPONSE_HEADER_PREFIX",
    "RESPONSE_METADATA_PREFIX",
    "HeaderAllowList",
    "MultiHeaders",
]

REQUEST_HEADER_PREFIX = "http.request.header"
RESPONSE_HEADER_PREFIX = "http.response.header"
REQUEST_METADATA_PREFIX = "rpc.grpc.request.metadata"
RESPONSE_METADATA_PREFIX = "rpc.grpc.response.metadata"
REDACTED = "[REDACTED]"
"""What a sanitized value is recorded as (the official instrumentations' word)."""
MAX_DECISIONS = 1024
"""Header names whose pattern decision is kept; past this many distinct names, new ones are matched every time."""

# A pattern made of these characters only matches exactly one header name: it is looked up, not matched.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")

_Decision = tuple[str, bool] | None  # (attribute name, redacted) or None: not recorded


class MultiHeaders(Protocol):
    """What is read from an ``httpx.Headers``: every value of one header, and all of them with lower-case names."""

    def get_list(self, key: str, split_commas: bool = False) -> list[str]:
        """All values of ``key``, in order."""
        ...

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, names in lower case."""
        ...


class HeaderAllowList:
    """The headers (or metadata keys) one side of a hop may record, with their precomputed attribute names.

    Args:
        prefix: ``http.request.header``, ``http.response.header`` or ``rpc.grpc.request.metadata``.
        names: The allow-list as the user wrote it (any case); never-recorded headers are removed.
        patterns: Regular expressions a whole header name may match (ignoring case) to be recorded; plain names
            among them are treated as names.
        sanitize: Regular expressions searched in a recorded header's name (ignoring case): a match records the
            value as ``[REDACTED]``.

    Raises:
        ValueError: a pattern does not compile (``setup()`` has already checked those it read from variables).

    Attributes:
        names: The lower-cased header names that are recorded by name, sorted.
    """

    __slots__ = ("_any", "_by_raw_name", "_decisions", "_keys", "_matcher", "_prefix", "_sanitizer", "names")

    def __init__(
        self,
        prefix: str,
        names: Iterable[str] | None,
        *,
        patterns: Iterable[str] = (),
        sanitize: Iterable[str] = (),
    ) -> None:
        patterns = tuple(patterns)
        plain = [p for p in patterns if _PLAIN_NAME.fullmatch(p)]
        self.names = allowed_header_names([*(names or ()), *plain])
        self._prefix = prefix
        self._matcher = compile_patterns(tuple(p for p in patterns if p not in plain), re.IGNORECASE)
        self._sanitizer = compile_patterns(tuple(sanitize), re.IGNORECASE)
        self._keys = tuple((name, f"{prefix}.{name}", self._redacted(name)) for name in self.names)
        self._by_raw_name = {name.encode("latin-1"): (key, redact) for name, key, redact in self._keys}
        self._decisions: dict[str, _Decision] = {name: (key, redact) for name, key, redact in self._keys}
        self._any = bool(self.names) or self._matcher is not None  # asked per request: computed once

    def __bool__(self) -> bool:
        return self._any

    def __repr__(self) -> str:
        pattern = None if self._matcher is None else self._matcher.pattern
        return f"HeaderAllowList({list(self.names)!r}, patterns={pattern!r})"

    def _redacted(self, name: str) -> bool:
        return self._sanitizer is not None and self._sanitizer.search(name) is not None

    def _decide(self, name: str) -> _Decision:
        """Whether a lower-case header name is recorded, under which attribute, redacted or not (kept if room)."""
        decision = self._decisions.get(name, False)
        if decision is not False:
            return decision  # type: ignore[return-value]  # False is the "not decided yet" marker only
        matcher = self._matcher
        if name in NEVER_RECORDED_HEADERS or matcher is None or matcher.fullmatch(name) is None:
            decision = None
        else:
            decision = (f"{self._prefix}.{name}", self._redacted(name))
        if len(self._decisions) < MAX_DECISIONS:
            self._decisions[name] = decision
        return decision

    def from_headers(self, headers: MultiHeaders) -> dict[str, list[str]]:
        """Attributes for the allowed headers present in ``headers`` (an ``httpx.Headers``)."""
        if self._matcher is not None:
            return self.from_text_pairs(headers.multi_items())
        attributes: dict[str, list[str]] = {}
        for name, key, redact in self._keys:
            values = headers.get_list(name)
            if values:
                attributes[key] = [REDACTED] * len(values) if redact else values
        return attributes

    def from_pairs(self, headers: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
        """Attributes for the allowed headers among ASGI ``(name, value)`` byte pairs (names in any case)."""
        if self._matcher is not None:
            return self.from_text_pairs((n.decode("latin-1"), v.decode("latin-1")) for n, v in headers)
        attributes: dict[str, list[str]] = {}
        by_raw_name = self._by_raw_name
        for name, value in headers:
            found = by_raw_name.get(name) or by_raw_name.get(name.lower())
            if found is not None:
                key, redact = found
                attributes.setdefault(key, []).append(REDACTED if redact else value.decode("latin-1"))
        return attributes

    def from_text_pairs(self, pairs: Iterable[tuple[str, str | bytes]]) -> dict[str, list[str]]:
        """Attributes for the allowed entries among text ``(name, value)`` pairs; ``bytes`` values are skipped.

        gRPC metadata is such pairs: binary (``-bin``) values are never recorded.
        """
        attributes: dict[str, list[str]] = {}
        decide = self._decide
        for name, value in pairs:
            if not isinstance(value, str):
                continue
            decision = decide(name if name.islower() else name.lower())
            if decision is not None:
                key, redact = decision
                attributes.setdefault(key, []).append(REDACTED if redact else value)
        return attributes
