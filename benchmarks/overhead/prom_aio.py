"""py-grpc-prometheus for ``grpc.aio``: the shim the "official" variant of W2 needs.

py-grpc-prometheus 0.8 (the last release) ships sync interceptors only, and ``grpc.aio`` rejects those. A user of
grpc.aio who wants go-grpc-middleware metrics writes a thin adapter like this one, so the benchmark does the
same: py-grpc-prometheus's own metric families (``server_metrics.init_metrics`` / ``client_metrics.init_metrics``)
updated exactly as its sync interceptors update them (a ``labels()`` look-up per update, ``default_timer``). Only
the unary-unary shape is adapted, which is all W2 uses; other shapes pass through untouched.

The sync interceptors themselves need no shim with prometheus-client 0.26 and grpcio 1.85 (checked: they count
and time unary and streaming RPCs correctly, with warnings as errors).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from timeit import default_timer
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from prometheus_client import CollectorRegistry
from py_grpc_prometheus import (  # type: ignore[import-untyped]  # ships no type information
    client_metrics,
    grpc_utils,
    server_metrics,
)

if TYPE_CHECKING:
    _ServerBase = grpc.aio.ServerInterceptor[Any, Any]
    _ClientBase = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _ServerBase = grpc.aio.ServerInterceptor
    _ClientBase = grpc.aio.UnaryUnaryClientInterceptor

__all__ = ["PromAioClientInterceptor", "PromAioServerInterceptor"]

_Behavior = Callable[[Any, Any], Awaitable[Any]]


def _split(full_method: str | bytes) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (service, method), as ``grpc_utils.split_method_call`` (aio gives bytes)."""
    name = full_method.decode() if isinstance(full_method, bytes) else full_method
    parts = name.split("/")
    return (parts[1], parts[2]) if len(parts) >= 3 else ("", "")


class PromAioServerInterceptor(_ServerBase):
    """py-grpc-prometheus's server metrics (started, handled, handling histogram) for grpc.aio unary RPCs.

    Args:
        registry: where the metric families are registered.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._metrics = server_metrics.init_metrics(registry)
        self._handled = server_metrics.get_grpc_server_handled_counter(False, registry)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        service, method = _split(handler_call_details.method)
        behavior: _Behavior = handler.unary_unary  # type: ignore[assignment]  # aio handlers are coroutines
        metrics = self._metrics
        handled = self._handled

        async def observed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = default_timer()
            metrics["grpc_server_started_counter"].labels(
                grpc_type=grpc_utils.UNARY, grpc_service=service, grpc_method=method
            ).inc()
            code = grpc.StatusCode.UNKNOWN
            try:
                response = await behavior(request, context)
                code = context.code() or grpc.StatusCode.OK
                return response
            finally:
                handled.labels(
                    grpc_type=grpc_utils.UNARY, grpc_service=service, grpc_method=method, grpc_code=code.name
                ).inc()
                metrics["grpc_server_handled_histogram"].labels(
                    grpc_type=grpc_utils.UNARY, grpc_service=service, grpc_method=method
                ).observe(max(default_timer() - start, 0))

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class PromAioClientInterceptor(_ClientBase):
    """py-grpc-prometheus's client metrics (started, handled, handling histogram) for grpc.aio unary calls.

    Args:
        registry: where the metric families are registered.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._metrics = client_metrics.init_metrics(registry)

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[grpc.aio.UnaryUnaryCall[Any, Any]]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> grpc.aio.UnaryUnaryCall[Any, Any]:
        service, method = _split(client_call_details.method)
        metrics = self._metrics
        metrics["grpc_client_started_counter"].labels(
            grpc_type=grpc_utils.UNARY, grpc_service=service, grpc_method=method
        ).inc()
        start = default_timer()
        call = await continuation(client_call_details, request)
        code = await call.code()
        metrics["grpc_client_handled_histogram"].labels(
            grpc_type=grpc_utils.UNARY, grpc_service=service, grpc_method=method
        ).observe(max(default_timer() - start, 0))
        metrics["grpc_client_handled_counter"].labels(
            grpc_type=grpc_utils.UNARY, grpc_service=service, grpc_method=method, grpc_code=code.name
        ).inc()
        return call
