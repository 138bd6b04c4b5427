"""gateway: the public HTTP entry point, a Starlette app under uvicorn with ``hoptel.ASGIMiddleware``.

``POST /orders`` with ``{"sku": "widget", "quantity": 2}`` calls ``demo.Orders/PlaceOrder`` over a ``grpc.aio``
channel with ``hoptel.aio_client_interceptor()`` and maps the gRPC status to HTTP: OK 200, NOT_FOUND 404,
INVALID_ARGUMENT 400, FAILED_PRECONDITION 409, DEADLINE_EXCEEDED 504, UNAVAILABLE 503, anything else 502.
Every answer carries ``x-trace-id``, the trace the request started, so a caller can look it up, and
``x-served-by``, the pid of the process that answered (one of several under ``uvicorn --workers``).

Run alone: ``python -m examples.services.gateway --port 8000 --orders 127.0.0.1:50052``, then
``curl -s localhost:8000/orders -d '{"sku": "widget", "quantity": 2}'``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable

import grpc
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import hoptel
from examples.services import runtime
from examples.services.wire import OrdersStub

__all__ = ["HTTP_STATUS", "ORDERS_TIMEOUT_S", "build_app", "main"]

log = logging.getLogger("gateway")

ORDERS_TIMEOUT_S = 3.0
"""The deadline the gateway gives each call to orders."""

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
"""gRPC status -> HTTP status; any code not listed is 502."""


def _trace_header() -> dict[str, str]:
    """``x-trace-id`` of the span hoptel's middleware made current for this request, and ``x-served-by`` (the pid)."""
    headers = {"x-served-by": str(os.getpid())}
    trace_id = trace.get_current_span().get_span_context().trace_id
    if trace_id:
        headers["x-trace-id"] = format(trace_id, "032x")
    return headers


async def create_order(request: Request) -> JSONResponse:
    """``POST /orders``: place an order through the orders service."""
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return JSONResponse({"error": "the body must be JSON"}, status_code=400, headers=_trace_header())
    orders: OrdersStub = request.app.state.orders
    try:
        reply = await orders.place_order(body, timeout=ORDERS_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        status = HTTP_STATUS.get(error.code(), 502)
        log.warning("orders answered %s (%s): HTTP %d", error.code().name, error.details(), status)
        detail = {"error": error.code().name, "detail": error.details()}
        return JSONResponse(detail, status_code=status, headers=_trace_header())
    return JSONResponse(reply, headers=_trace_header())


def build_app(orders_address: str, on_started: Callable[[], None] | None = None) -> Starlette:
    """The gateway app; its gRPC channel to ``orders_address`` lives as long as the app (the lifespan).

    ``on_started`` is called once the lifespan's startup is done (in each worker, under a multi-worker server).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Unpacked: hoptel's aio client interceptor is one interceptor per RPC shape, because grpc.aio would
        # see only the unary-unary side of a single object. target= adds server.address/port to the spans.
        interceptors = [*hoptel.aio_client_interceptor(target=orders_address)]
        channel = grpc.aio.insecure_channel(orders_address, interceptors=interceptors)
        app.state.orders = OrdersStub(channel)
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            await channel.close(None)

    return Starlette(
        routes=[Route("/orders", create_order, methods=["POST"])],
        middleware=[Middleware(hoptel.ASGIMiddleware)],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM, SIGINT or (with ``--watch-stdin``) end of input."""
    peers = {"orders": "orders' gRPC address, host:port"}
    args = runtime.parse_args("gateway", "The demo's HTTP gateway (ASGI).", peers, argv)
    telemetry = runtime.start_telemetry("gateway")
    runtime.serve_asgi("gateway", build_app(args.orders), args, telemetry)


if __name__ == "__main__":
    main()
