"""Pure helpers for HTTP spans: method normalisation, URL redaction, header allow-lists.

>>> redact_url("https://user:pw@example.com:8443/a?token=s3cret&x=1")
'https://REDACTED:REDACTED@example.com:8443/a?token=REDACTED&x=REDACTED'
>>> normalize_method("get")
'GET'
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "KNOWN_METHODS",
    "NEVER_RECORDED_HEADERS",
    "allowed_header_names",
    "normalize_method",
    "redact_url",
]

KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"})

# Values of these headers are never put on a span, even when an allow-list names them.
NEVER_RECORDED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token"}
)


def normalize_method(method: str) -> str:
    """The ``http.request.method`` value: the upper-case method, or ``_OTHER`` for non-standard ones."""
    upper = method.upper()
    return upper if upper in KNOWN_METHODS else "_OTHER"


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        key, sep, _ = item.partition("=")
        parts.append(f"{key}=REDACTED" if sep else key)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """``url.full`` without credentials and with every query value replaced by ``REDACTED``."""
    # The common case, inlined: an ASCII http(s) URL with a host and no credentials, fragment or brackets, which
    # urlsplit + urlunsplit give back as it is, but for the query (``redact_url_general``, held to it by tests).
    # Excluded (the general path): what makes urlsplit/urlunsplit do more than cut the string (credentials, a
    # fragment, IPv6 brackets, the tab and newlines urlsplit removes). One ``in`` each: a C scan, no loop.
    if (
        url.startswith(("http://", "https://"))
        and url.isascii()
        and "@" not in url
        and "#" not in url
        and "[" not in url
        and "]" not in url
        and "\t" not in url
        and "\r" not in url
        and "\n" not in url
    ):
        rest = url[8:] if url[4] == "s" else url[7:]
        if rest and rest[0] not in "/?":
            base, _, query = url.partition("?")
            return f"{base}?{_redact_query(query)}" if query else base
    return redact_url_general(url)


def redact_url_general(url: str) -> str:
    """:func:`redact_url` for any string, through ``urlsplit``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "REDACTED:REDACTED@" + netloc.rpartition("@")[2]
    query = _redact_query(parts.query) if parts.query else ""
    return SplitResult(parts.scheme, netloc, parts.path, query, "").geturl()


def allowed_header_names(names: Iterable[str] | None) -> tuple[str, ...]:
    """Lower-cased allow-list entries, minus the headers that are never recorded."""
    if not names:
        return ()
    return tuple(
        sorted({n.strip().lower() for n in names if n.strip() and n.strip().lower() not in NEVER_RECORDED_HEADERS})
    )
