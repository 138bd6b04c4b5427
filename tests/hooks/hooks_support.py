"""Helpers for the hook and extra-label tests: the echo service as ``hooks.test.Echo``, hook recorders.

The service (``support.grpc_echo``) has all four shapes on raw bytes: ``Unary`` echoes (``b"abort"`` aborts with
NOT_FOUND), ``ServerStream`` streams ``b"0"``..``b"n-1"`` for a request ``b"n"``, ``ClientStream`` joins the
requests with ``b"|"``, ``Bidi`` echoes each request.
"""

from __future__ import annotations

import threading
from typing import Any

import grpc
from opentelemetry.trace import Span
from support import grpc_echo

import hoptel
from hoptel.interceptors.hooks import GrpcCall, HttpCall

__all__ = [
    "BIDI",
    "CLIENT_STREAM",
    "SERVER_STREAM",
    "SERVICE",
    "UNARY",
    "Calls",
    "aio_handler",
    "hook_errors",
    "raising_hook",
    "sync_handler",
]

SERVICE = "hooks.test.Echo"
UNARY = f"/{SERVICE}/Unary"
SERVER_STREAM = f"/{SERVICE}/ServerStream"
CLIENT_STREAM = f"/{SERVICE}/ClientStream"
BIDI = f"/{SERVICE}/Bidi"


def sync_handler() -> grpc.GenericRpcHandler[Any, Any]:
    """The service for a sync ``grpc.server``."""
    return grpc_echo.sync_handler(SERVICE)


def aio_handler() -> grpc.GenericRpcHandler[Any, Any]:
    """The service for a ``grpc.aio.server``."""
    return grpc_echo.aio_handler(SERVICE)


class Calls:
    """Hooks that record what they were called with and tag the span with it.

    The request hook sets ``hook.request.<side>`` to the method (gRPC) or URL (HTTP) and ``hook.tenant`` to the
    ``x-tenant`` metadata/header; the response hook sets ``hook.response.<side>`` to the status.
    """

    def __init__(self) -> None:
        self.requests: list[Any] = []  # GrpcCall or HttpCall, as the integration gives
        self.responses: list[Any] = []
        self.responded = threading.Event()

    def request(self, span: Span, call: GrpcCall | HttpCall) -> None:
        self.requests.append(call)
        span.set_attribute(f"hook.request.{call.side}", call.method if isinstance(call, GrpcCall) else call.url)
        tenant = call.get("x-tenant")
        if isinstance(tenant, str):
            span.set_attribute("hook.tenant", tenant)

    def response(self, span: Span, call: GrpcCall | HttpCall) -> None:
        self.responses.append(call)
        if isinstance(call, GrpcCall):
            span.set_attribute(f"hook.response.{call.side}", call.code.name if call.code else "")
        else:
            span.set_attribute(f"hook.response.{call.side}", call.status_code or 0)
        self.responded.set()


def raising_hook(span: object, call: object) -> Any:
    """A hook that always fails."""
    raise RuntimeError("hook failed")


def hook_errors(tel: hoptel.Telemetry) -> float:
    """``hoptel_hook_errors_total`` of ``tel``."""
    return tel.registry.get_sample_value("hoptel_hook_errors_total") or 0.0
