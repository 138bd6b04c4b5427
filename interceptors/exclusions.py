"""What the integrations leave alone: excluded URLs and gRPC services, combined with the user's ``filter=``.

The settings come from the Telemetry's configuration (``hoptel.conventions``, parsed once by ``setup()``); here
they are turned, once per interceptor, transport or middleware, into the one "is this traced?" callable the
integration already asks. Nothing configured and no ``filter=`` gives None, so the hot path pays one ``is None``
check, as before; a gRPC filter is asked once per method, so excluding services costs nothing per call.

>>> traced = excluding_services(frozenset({"grpc.health.v1.Health"}), None)
>>> traced("/grpc.health.v1.Health/Check"), traced("/shop.Orders/Get")
(False, True)
>>> asgi_exclusion_url({"scheme": "http", "server": ("10.0.0.1", 80), "path": "/healthz", "headers": []})
'http://10.0.0.1/healthz'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hoptel.conventions import compile_patterns

if TYPE_CHECKING:
    import httpx

__all__ = ["asgi_exclusion_url", "asgi_traced", "excluding_services", "grpc_service", "httpx_traced"]

MethodFilter = Callable[[str], bool]
RequestFilter = Callable[["httpx.Request"], bool]
ScopeFilter = Callable[[Mapping[str, Any]], bool]


def grpc_service(method: str) -> str:
    """The fully qualified service of a full method name, as opentelemetry-instrumentation-grpc splits it.

    >>> grpc_service("/grpc.health.v1.Health/Check")
    'grpc.health.v1.Health'
    """
    return method.rpartition("/")[0].lstrip("/")


def excluding_services(services: frozenset[str], method_filter: MethodFilter | None) -> MethodFilter | None:
    """A method filter that is False for the excluded ``services`` and otherwise asks ``method_filter``."""
    if not services:
        return method_filter
    if method_filter is None:
        return lambda method: grpc_service(method) not in services
    user_filter = method_filter
    return lambda method: grpc_service(method) not in services and user_filter(method)


def httpx_traced(patterns: tuple[str, ...], request_filter: RequestFilter | None) -> RequestFilter | None:
    """An httpx request filter: False when a pattern is found in ``str(request.url)``, else ``request_filter``'s."""
    excluded = compile_patterns(patterns)
    if excluded is None:
        return request_filter
    search = excluded.search
    if request_filter is None:
        return lambda request: search(str(request.url)) is None
    user_filter = request_filter
    return lambda request: search(str(request.url)) is None and user_filter(request)


def asgi_exclusion_url(scope: Mapping[str, Any]) -> str:
    """The URL the official ASGI middleware matches exclusions against: scheme, host, path (no query).

    The host is the ``Host`` header, else the server address with its port unless that is 80.
    """
    host = next((value.decode("latin-1") for name, value in scope.get("headers") or () if name == b"host"), None)
    if host is None:
        server = scope.get("server") or ("0.0.0.0", 80)
        host = str(server[0]) if str(server[1]) == "80" else f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('path', '')}"


def asgi_traced(patterns: tuple[str, ...], path_filter: Callable[[str], bool] | None) -> ScopeFilter | None:
    """An ASGI scope filter: False for an excluded URL (:func:`asgi_exclusion_url`), else ``path_filter``'s."""
    excluded = compile_patterns(patterns)
    if excluded is None:
        if path_filter is None:
            return None
        user_filter = path_filter
        return lambda scope: user_filter(scope.get("path", ""))
    search = excluded.search
    if path_filter is None:
        return lambda scope: search(asgi_exclusion_url(scope)) is None
    by_path = path_filter
    return lambda scope: search(asgi_exclusion_url(scope)) is None and by_path(scope.get("path", ""))
