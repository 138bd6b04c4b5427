"""What the httpx transports and the ASGI middleware set up alike, once per instance.

Both sides record the request and response headers the same way; only the settings they read differ (client or
server header patterns).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from hoptel.conventions import ConventionsConfig
from hoptel.interceptors.headers import REQUEST_HEADER_PREFIX, RESPONSE_HEADER_PREFIX, HeaderAllowList

__all__ = ["recorded_headers"]


def recorded_headers(
    settings: ConventionsConfig,
    side: Literal["client", "server"],
    record_request_headers: Iterable[str],
    record_response_headers: Iterable[str],
) -> tuple[HeaderAllowList | None, HeaderAllowList | None]:
    """The request and response headers one side records on its spans, each None when it records none.

    Per request the side then asks one ``is not None``. The allow-lists are the given names plus the patterns
    of ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{CLIENT,SERVER}_{REQUEST,RESPONSE}``.
    """
    if side == "client":
        request_patterns, response_patterns = settings.http_client_request, settings.http_client_response
    else:
        request_patterns, response_patterns = settings.http_server_request, settings.http_server_response
    sanitize = settings.sanitize_fields
    request = HeaderAllowList(
        REQUEST_HEADER_PREFIX, record_request_headers, patterns=request_patterns, sanitize=sanitize
    )
    response = HeaderAllowList(
        RESPONSE_HEADER_PREFIX, record_response_headers, patterns=response_patterns, sanitize=sanitize
    )
    return (request if request else None), (response if response else None)
