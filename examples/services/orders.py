"""orders: a ``grpc.aio`` server that calls inventory over gRPC and pricing over HTTP.

``demo.Orders/PlaceOrder`` checks the item (``demo.Inventory/Check``), then at the same time streams the
warehouses holding it (``demo.Inventory/Warehouses``) and asks pricing for a quote (``GET /prices/{sku}``), and
answers with the order. A failure below is passed up with its gRPC code: an unknown item stays NOT_FOUND, and an
inventory that does not answer within orders' budget becomes DEADLINE_EXCEEDED.

Propagation: orders runs with ``OTEL_PROPAGATORS=tracecontext,baggage,b3``. It extracts the W3C
``traceparent`` the gateway sends, and injects W3C *and* B3 on every outgoing call; inventory reads the W3C
headers, pricing (configured for ``b3`` only) reads the ``b3`` header, and all of it is one trace.

Run alone: ``python -m examples.services.orders --inventory 127.0.0.1:50051 --pricing http://127.0.0.1:8001``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import NoReturn

import grpc
import httpx

import hoptel
from examples.services import runtime
from examples.services.wire import ORDERS, InventoryStub, JSONObject, decode, encode

__all__ = ["INVENTORY_BUDGET_S", "PRICING_TIMEOUT_S", "Orders", "main"]

log = logging.getLogger("orders")

INVENTORY_BUDGET_S = 0.5
"""The most orders waits for an inventory call (less when its own caller's deadline is nearer)."""
PRICING_TIMEOUT_S = 2.0
"""The HTTP timeout for pricing."""

Context = grpc.aio.ServicerContext[JSONObject, JSONObject]


class Orders:
    """The ``demo.Orders`` servicer.

    Args:
        inventory: A stub on a channel from ``hoptel.instrument_aio_channel()``.
        pricing: An ``httpx.AsyncClient`` on ``hoptel.AsyncHTTPTransport()`` with pricing's base URL.
    """

    def __init__(self, inventory: InventoryStub, pricing: httpx.AsyncClient) -> None:
        self.inventory = inventory
        self.pricing = pricing

    async def place_order(self, request: JSONObject, context: Context) -> JSONObject:
        """``demo.Orders/PlaceOrder``: check, locate and price the item, then confirm the order."""
        sku = request.get("sku")
        quantity = request.get("quantity", 1)
        if not isinstance(sku, str) or not isinstance(quantity, int) or quantity < 1:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "want {'sku': str, 'quantity': int >= 1}")
        budget = _budget(context)
        try:
            item = await self.inventory.check({"sku": sku}, timeout=budget)
        except grpc.aio.AioRpcError as error:
            await _pass_up(context, "inventory", error)
        stock, quote = await asyncio.gather(
            self._locate(sku, quantity, budget), self._quote(sku, quantity), return_exceptions=True
        )
        if isinstance(stock, grpc.aio.AioRpcError):
            await _pass_up(context, "inventory", stock)
        if isinstance(quote, httpx.HTTPError):
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"pricing: {quote}")
        if isinstance(stock, BaseException):
            raise stock
        if isinstance(quote, BaseException):
            raise quote
        if sum(part["quantity"] for part in stock) < quantity:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"only {item['in_stock']} of {sku!r} in stock")
        order_id = f"ord-{secrets.token_hex(4)}"
        log.info("order %s placed: %d x %s for %s %s", order_id, quantity, sku, quote["total"], quote["currency"])
        return {
            "order_id": order_id,
            "sku": sku,
            "name": item["name"],
            "quantity": quantity,
            "ships_from": stock,
            "total": quote["total"],
            "currency": quote["currency"],
        }

    async def _locate(self, sku: str, quantity: int, timeout: float) -> list[JSONObject]:
        """Read the whole warehouse stream and pick warehouses until ``quantity`` is covered."""
        picked: list[JSONObject] = []
        needed = quantity
        async for message in self.inventory.warehouses({"sku": sku}, timeout=timeout):
            take = min(needed, int(message["available"]))
            if take:
                picked.append({"warehouse": message["warehouse"], "quantity": take})
                needed -= take
        return picked

    async def _quote(self, sku: str, quantity: int) -> JSONObject:
        response = await self.pricing.get(f"/prices/{sku}", params={"quantity": quantity})
        response.raise_for_status()
        quote: JSONObject = response.json()
        return quote


def _budget(context: Context) -> float:
    """How long an inventory call may take: our budget, or less when our caller's deadline is nearer."""
    remaining: float | None = context.time_remaining()  # None when the caller set no deadline
    return INVENTORY_BUDGET_S if remaining is None else max(0.0, min(INVENTORY_BUDGET_S, remaining))


async def _pass_up(context: Context, peer: str, error: grpc.aio.AioRpcError) -> NoReturn:
    """Fail this RPC with the code a downstream call failed with (NOT_FOUND stays NOT_FOUND)."""
    log.warning("%s answered %s: %s", peer, error.code().name, error.details())
    await context.abort(error.code(), f"{peer}: {error.details()}")


async def serve(args: runtime.ServiceArgs, telemetry: hoptel.Telemetry) -> None:
    """Serve ``demo.Orders`` until asked to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def request_stop() -> None:  # called from a signal handler or the stdin thread
        loop.call_soon_threadsafe(stop.set)

    runtime.on_stop_request(request_stop, args.watch_stdin)
    # An instrumented channel records the Check calls and the Warehouses stream (the gateway shows the interceptor).
    channel = hoptel.instrument_aio_channel(grpc.aio.insecure_channel(args.inventory), target=args.inventory)
    pricing = httpx.AsyncClient(base_url=args.pricing, transport=hoptel.AsyncHTTPTransport(), timeout=PRICING_TIMEOUT_S)
    orders = Orders(InventoryStub(channel), pricing)
    server = grpc.aio.server(interceptors=[hoptel.aio_server_interceptor()])
    handler = grpc.unary_unary_rpc_method_handler(
        orders.place_order, request_deserializer=decode, response_serializer=encode
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(ORDERS, {"PlaceOrder": handler}),))
    try:
        try:
            port = server.add_insecure_port(f"{args.host}:{args.port}")
        except RuntimeError as error:
            runtime.die("orders", f"cannot listen on {args.host}:{args.port}: {error}")
        await server.start()
        runtime.announce_ready("orders", f"{args.host}:{port}", telemetry)
        await stop.wait()
        await server.stop(grace=1.0)
    finally:
        await pricing.aclose()
        await channel.close(None)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM, SIGINT or (with ``--watch-stdin``) end of input."""
    peers = {"inventory": "inventory's gRPC address, host:port", "pricing": "pricing's base URL, http://host:port"}
    args = runtime.parse_args("orders", "The demo's orders service (gRPC aio).", peers, argv)
    telemetry = runtime.start_telemetry("orders")
    try:
        asyncio.run(serve(args, telemetry))
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
