"""What the httpx transports and the ASGI middleware take and set up alike, once per instance.

Both sides take the same options (:class:`HttpOptions`) and record the request and response headers the same way;
only the settings they read differ (client or server header patterns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Literal, TypedDict

from hoptel.conventions import ConventionsConfig
from hoptel.interceptors.headers import REQUEST_HEADER_PREFIX, RESPONSE_HEADER_PREFIX, HeaderAllowList

if TYPE_CHECKING:
    from hoptel.interceptors.extra_labels import ExtraLabels
    from hoptel.interceptors.hooks import HttpCall, HttpHook

__all__ = ["HttpOptions", "check_options", "recorded_headers"]


class HttpOptions(TypedDict, total=False):
    """The keywords every HTTP integration takes besides ``telemetry`` and ``filter`` (whose argument differs).

    ``hoptel.ASGIMiddleware`` and ``hoptel.instrument_httpx()`` take them as ``**options``; ``HTTPTransport`` and
    ``AsyncHTTPTransport`` spell them out, since their other keywords go to httpx's transport. All are optional.

    Attributes:
        record_request_headers: Request headers whose values go on the span as ``http.request.header.<name>``,
            besides those ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{CLIENT,SERVER}_REQUEST`` names.
        record_response_headers: Response headers recorded as ``http.response.header.<name>`` (and those of
            ``..._{CLIENT,SERVER}_RESPONSE``). ``authorization``, ``cookie`` and the other never-recorded headers
            never are.
        request_hook: ``hook(span, call)`` run before a request is sent (httpx) or the app is called (ASGI); see
            ``interceptors.hooks``.
        response_hook: ``hook(span, call)`` run when the response is closed or the request failed (httpx), or when
            the app returned, with the status, route and response headers (ASGI).
        extra_labels: Extra metric labels taken from each request, capped (see ``interceptors.extra_labels``).
    """

    record_request_headers: Iterable[str]
    record_response_headers: Iterable[str]
    request_hook: HttpHook | None
    response_hook: HttpHook | None
    extra_labels: ExtraLabels[HttpCall] | None


def check_options(factory: str, options: Mapping[str, object]) -> None:
    """Raise ``TypeError`` naming the allowed keywords when ``options`` holds one that is not an option."""
    unknown = sorted(options.keys() - HttpOptions.__optional_keys__)
    if unknown:
        allowed = sorted({"telemetry", "filter", *HttpOptions.__optional_keys__})
        raise TypeError(f"{factory}() got an unexpected keyword argument {unknown[0]!r}; takes {allowed}")


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
