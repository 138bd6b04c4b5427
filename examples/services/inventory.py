"""inventory: a synchronous ``grpc.server`` with ``hoptel.server_interceptor()``.

``demo.Inventory/Check`` (unary) answers what an item is and how many are in stock, or aborts with NOT_FOUND for
an unknown SKU. ``demo.Inventory/Warehouses`` (server streaming) sends one message per warehouse holding the
item. The ``anvil`` lives in a slow warehouse: streaming it takes longer than orders is willing to wait, which is
how the demo shows DEADLINE_EXCEEDED. The handler stops early when the caller gives up.

Run alone: ``python -m examples.services.inventory --port 50051``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc

import hoptel
from examples.services import runtime
from examples.services.wire import INVENTORY, JSONObject, decode, encode

__all__ = ["CATALOGUE", "Item", "build_server", "main"]

log = logging.getLogger("inventory")


@dataclass(frozen=True)
class Item:
    """One catalogue entry: its name, stock per warehouse, and how long each warehouse takes to report."""

    name: str
    stock: dict[str, int]
    scan_delay_s: float = 0.0


CATALOGUE: dict[str, Item] = {
    "widget": Item("Widget", {"berlin": 12, "lyon": 3}),
    "gadget": Item("Gadget", {"berlin": 2, "lyon": 4, "porto": 9}),
    "anvil": Item("Anvil (ships from the slow warehouse)", {"far-away": 1, "further-away": 1}, scan_delay_s=0.8),
}
"""What inventory knows about; any other SKU is NOT_FOUND."""


def _item(request: JSONObject, context: grpc.ServicerContext) -> tuple[str, Item]:
    sku = str(request.get("sku", ""))
    item = CATALOGUE.get(sku)
    if item is None:
        log.warning("unknown sku %r", sku)
        context.abort(grpc.StatusCode.NOT_FOUND, f"no item with sku {sku!r}")
    return sku, item


def check(request: JSONObject, context: grpc.ServicerContext) -> JSONObject:
    """``demo.Inventory/Check``: the item and its total stock; NOT_FOUND for an unknown SKU."""
    sku, item = _item(request, context)
    in_stock = sum(item.stock.values())
    log.info("checked %s: %d in stock", sku, in_stock)
    return {"sku": sku, "name": item.name, "in_stock": in_stock}


def warehouses(request: JSONObject, context: grpc.ServicerContext) -> Iterator[JSONObject]:
    """``demo.Inventory/Warehouses``: one message per warehouse holding the item, as each one reports."""
    sku, item = _item(request, context)
    gone = threading.Event()
    context.add_callback(gone.set)  # runs when the RPC ends for any reason, e.g. the caller's deadline passed
    for warehouse, available in item.stock.items():
        if gone.wait(item.scan_delay_s):
            log.info("caller gave up while %s was scanning for %s", warehouse, sku)
            return
        yield {"warehouse": warehouse, "available": available}


def build_server() -> grpc.Server:
    """The gRPC server with both methods registered as JSON generic handlers and hoptel's interceptor."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="inventory"),
        interceptors=[hoptel.server_interceptor()],
    )
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=decode, response_serializer=encode),
        "Warehouses": grpc.unary_stream_rpc_method_handler(
            warehouses, request_deserializer=decode, response_serializer=encode
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(INVENTORY, handlers),))
    return server


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM, SIGINT or (with ``--watch-stdin``) end of input."""
    args = runtime.parse_args("inventory", "The demo's inventory service (sync gRPC).", {}, argv)
    telemetry = runtime.start_telemetry("inventory")
    stop = threading.Event()
    runtime.on_stop_request(stop.set, args.watch_stdin)
    server = build_server()
    try:
        try:
            port = server.add_insecure_port(f"{args.host}:{args.port}")
        except RuntimeError as error:
            runtime.die("inventory", f"cannot listen on {args.host}:{args.port}: {error}")
        server.start()
        runtime.announce_ready("inventory", f"{args.host}:{port}", telemetry)
        while not stop.wait(1.0):
            pass
        server.stop(grace=1.0).wait()
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
