"""The official instrumentations' settings, parsed once: excluded URLs and services, captured headers and metadata.

Users of the OpenTelemetry instrumentations bring these variables with them; hoptel reads them as those do:

* ``OTEL_PYTHON_EXCLUDED_URLS`` and the per-library ``OTEL_PYTHON_HTTPX_EXCLUDED_URLS`` /
  ``OTEL_PYTHON_ASGI_EXCLUDED_URLS``: comma-separated regular expressions searched (``re.search``) in the full URL of
  a request; a match means no span and no metric. A per-library variable that is set, even empty, wins over the
  generic one (opentelemetry-util-http's ``get_excluded_urls``).
* ``OTEL_PYTHON_GRPC_EXCLUDED_SERVICES``: comma-separated fully qualified service names (``pkg.Service``), as
  opentelemetry-instrumentation-grpc reads it. ``grpc.health.v1.Health`` is excluded too unless
  ``HOPTEL_TRACE_HEALTH_CHECKS=true``.
* ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{SERVER,CLIENT}_{REQUEST,RESPONSE}``: comma-separated header names or
  regular expressions matched against the whole name, ignoring case; ``..._SANITIZE_FIELDS``: regular expressions
  searched in a captured header's name, ignoring case, whose values are recorded as ``[REDACTED]``.
* ``HOPTEL_CAPTURE_GRPC_METADATA_{SERVER,CLIENT}_{REQUEST,RESPONSE}``: the same for gRPC metadata keys (sanitized
  by the same ``..._SANITIZE_FIELDS``).

Empty entries (``a,,b`` or a trailing comma) are ignored; in the official ``ExcludeList`` one would match every URL.
A pattern that does not compile is a ``ValueError`` naming the variable and the pattern.

>>> settings = parse_conventions({"OTEL_PYTHON_EXCLUDED_URLS": "/healthz$, /metrics"}.get)
>>> settings.httpx_excluded_urls
('/healthz$', '/metrics')
>>> settings.grpc_excluded_services
frozenset({'grpc.health.v1.Health'})
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CAPTURE_VARIABLES",
    "HEALTH_SERVICE",
    "SANITIZE_FIELDS",
    "VARIABLES",
    "ConventionsConfig",
    "compile_patterns",
    "parse_conventions",
]

HEALTH_SERVICE = "grpc.health.v1.Health"
"""The gRPC Health Checking Protocol's service, excluded unless ``HOPTEL_TRACE_HEALTH_CHECKS=true``."""

_HEADERS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_"
_METADATA = "HOPTEL_CAPTURE_GRPC_METADATA_"
SANITIZE_FIELDS = f"{_HEADERS}SANITIZE_FIELDS"
"""The variable naming header (and metadata key) patterns whose captured values are recorded as ``[REDACTED]``."""

CAPTURE_VARIABLES = {
    "http_server_request": f"{_HEADERS}SERVER_REQUEST",
    "http_server_response": f"{_HEADERS}SERVER_RESPONSE",
    "http_client_request": f"{_HEADERS}CLIENT_REQUEST",
    "http_client_response": f"{_HEADERS}CLIENT_RESPONSE",
    "grpc_server_request": f"{_METADATA}SERVER_REQUEST",
    "grpc_client_request": f"{_METADATA}CLIENT_REQUEST",
    "grpc_server_response": f"{_METADATA}SERVER_RESPONSE",
    "grpc_client_response": f"{_METADATA}CLIENT_RESPONSE",
}
"""The ``ConventionsConfig`` capture field -> the variable it is read from."""

VARIABLES = (
    "OTEL_PYTHON_EXCLUDED_URLS",
    "OTEL_PYTHON_HTTPX_EXCLUDED_URLS",
    "OTEL_PYTHON_ASGI_EXCLUDED_URLS",
    "OTEL_PYTHON_GRPC_EXCLUDED_SERVICES",
    "HOPTEL_TRACE_HEALTH_CHECKS",
    *CAPTURE_VARIABLES.values(),
    SANITIZE_FIELDS,
)
"""Every variable this module reads (``hoptel.config`` lists them among the settings)."""

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


@dataclass(frozen=True, slots=True)
class ConventionsConfig:
    """What the integrations exclude and capture, validated; every pattern here compiles.

    Attributes:
        httpx_excluded_urls: Regular expressions searched in an httpx request's URL (``str(request.url)``).
        asgi_excluded_urls: Regular expressions searched in an ASGI request's URL (scheme, host, path).
        grpc_excluded_services: Services whose methods get no span and no metric, clients and servers.
        http_server_request: Header patterns the ASGI middleware records from requests; likewise the others.
        sanitize_fields: Patterns of header (and metadata) names whose captured values become ``[REDACTED]``.
    """

    httpx_excluded_urls: tuple[str, ...] = ()
    asgi_excluded_urls: tuple[str, ...] = ()
    grpc_excluded_services: frozenset[str] = frozenset({HEALTH_SERVICE})
    http_server_request: tuple[str, ...] = ()
    http_server_response: tuple[str, ...] = ()
    http_client_request: tuple[str, ...] = ()
    http_client_response: tuple[str, ...] = ()
    grpc_server_request: tuple[str, ...] = ()
    grpc_client_request: tuple[str, ...] = ()
    grpc_server_response: tuple[str, ...] = ()
    grpc_client_response: tuple[str, ...] = ()
    sanitize_fields: tuple[str, ...] = ()


def _entries(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(entry.strip() for entry in value.split(",") if entry.strip())


def compile_patterns(patterns: tuple[str, ...], flags: int = 0, variable: str = "patterns") -> re.Pattern[str] | None:
    """One regular expression matching any of ``patterns`` (None for none), as the official util joins them.

    Raises:
        ValueError: a pattern does not compile; the message names ``variable`` and the pattern.
    """
    if not patterns:
        return None
    for pattern in patterns:
        try:
            re.compile(pattern, flags)
        except re.error as error:
            raise ValueError(f"{variable}: {pattern!r} is not a valid regular expression ({error})") from None
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), flags)


def _urls(get: Callable[[str], str | None], library: str) -> tuple[str, ...]:
    specific = f"OTEL_PYTHON_{library}_EXCLUDED_URLS"
    value = get(specific)
    name = specific
    if value is None:  # set, even empty, the per-library variable wins (as get_excluded_urls does)
        value, name = get("OTEL_PYTHON_EXCLUDED_URLS"), "OTEL_PYTHON_EXCLUDED_URLS"
    patterns = _entries(value)
    compile_patterns(patterns, variable=name)
    return patterns


def _flag(get: Callable[[str], str | None], name: str) -> bool:
    value = (get(name) or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={get(name)!r}: expected true or false")


def parse_conventions(get: Callable[[str], str | None]) -> ConventionsConfig:
    """Read and validate the variables through ``get`` (returns a variable's value, None when unset).

    Raises:
        ValueError: a pattern that does not compile, or a bad ``HOPTEL_TRACE_HEALTH_CHECKS``; the message names the
            variable.
    """
    services = set(_entries(get("OTEL_PYTHON_GRPC_EXCLUDED_SERVICES")))
    if not _flag(get, "HOPTEL_TRACE_HEALTH_CHECKS"):
        services.add(HEALTH_SERVICE)
    captures: dict[str, tuple[str, ...]] = {}
    for field_name, variable in CAPTURE_VARIABLES.items():
        captures[field_name] = _entries(get(variable))
        compile_patterns(captures[field_name], re.IGNORECASE, variable)
    sanitize = _entries(get(SANITIZE_FIELDS))
    compile_patterns(sanitize, re.IGNORECASE, SANITIZE_FIELDS)
    return ConventionsConfig(
        httpx_excluded_urls=_urls(get, "HTTPX"),
        asgi_excluded_urls=_urls(get, "ASGI"),
        grpc_excluded_services=frozenset(services),
        sanitize_fields=sanitize,
        **captures,
    )
