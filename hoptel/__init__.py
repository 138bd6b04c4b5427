"""hoptel: cheap tracing, latency metrics and quiet logs for the hops between services.

>>> import hoptel
>>> tel = hoptel.setup(service_name="orders")        # doctest: +SKIP
>>> server = grpc.server(pool, interceptors=[hoptel.server_interceptor()])   # doctest: +SKIP

Integrations are imported on first use, so ``import hoptel`` loads neither grpc nor httpx and has no side
effects; ``setup()`` can therefore still quieten gRPC's C core before grpc is first imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hoptel.telemetry import Telemetry, setup

if TYPE_CHECKING:
    from hoptel.interceptors.auto.zerocode import instrument, uninstrument
    from hoptel.interceptors.grpc.aio_channel import instrument_aio_channel
    from hoptel.interceptors.grpc.aio_client import aio_client_interceptor, aio_client_interceptors
    from hoptel.interceptors.grpc.aio_server import aio_server_interceptor
    from hoptel.interceptors.grpc.channel import instrument_channel
    from hoptel.interceptors.grpc.client import client_interceptor
    from hoptel.interceptors.grpc.server import server_interceptor
    from hoptel.interceptors.http.asgi import ASGIMiddleware
    from hoptel.interceptors.http.httpx_transport import AsyncHTTPTransport, HTTPTransport, instrument_httpx

__all__ = [
    "ASGIMiddleware",
    "AsyncHTTPTransport",
    "HTTPTransport",
    "Telemetry",
    "aio_client_interceptor",
    "aio_client_interceptors",
    "aio_server_interceptor",
    "client_interceptor",
    "instrument",
    "instrument_aio_channel",
    "instrument_channel",
    "instrument_httpx",
    "server_interceptor",
    "setup",
    "uninstrument",
]

_LAZY = {
    "ASGIMiddleware": "hoptel.interceptors.http.asgi",
    "AsyncHTTPTransport": "hoptel.interceptors.http.httpx_transport",
    "HTTPTransport": "hoptel.interceptors.http.httpx_transport",
    "instrument_httpx": "hoptel.interceptors.http.httpx_transport",
    "aio_client_interceptor": "hoptel.interceptors.grpc.aio_client",
    "aio_client_interceptors": "hoptel.interceptors.grpc.aio_client",
    "aio_server_interceptor": "hoptel.interceptors.grpc.aio_server",
    "client_interceptor": "hoptel.interceptors.grpc.client",
    "instrument_channel": "hoptel.interceptors.grpc.channel",
    "instrument_aio_channel": "hoptel.interceptors.grpc.aio_channel",
    "server_interceptor": "hoptel.interceptors.grpc.server",
    "instrument": "hoptel.interceptors.auto.zerocode",
    "uninstrument": "hoptel.interceptors.auto.zerocode",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hoptel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
