"""The demo's gRPC contract: two services whose messages are JSON objects, so there is no protoc step.

gRPC does not care what a message is as long as both sides agree how to turn it into bytes. The servers
register their methods with ``grpc.method_handlers_generic_handler`` and the clients build their callables with
``channel.unary_unary(...)`` / ``channel.unary_stream(...)``, both with the two functions below::

    demo.Inventory/Check       unary          {"sku"}              -> {"sku", "name", "in_stock"}
    demo.Inventory/Warehouses  server stream  {"sku"}              -> {"warehouse", "available"} ...
    demo.Orders/PlaceOrder     unary          {"sku", "quantity"}  -> {"order_id", "sku", "quantity", ...}

hoptel's interceptors see the same method names (``/demo.Inventory/Check``) as with compiled protos, so the
spans are named ``demo.Inventory/Check`` and the metrics carry ``grpc_service="demo.Inventory"``.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

__all__ = [
    "INVENTORY",
    "ORDERS",
    "InventoryStub",
    "JSONObject",
    "OrdersStub",
    "decode",
    "encode",
]

INVENTORY = "demo.Inventory"
"""The inventory service's fully qualified gRPC name."""
ORDERS = "demo.Orders"
"""The orders service's fully qualified gRPC name."""

JSONObject = dict[str, Any]
"""One message: a JSON object."""


def encode(message: JSONObject) -> bytes:
    """Serialize one message (compact JSON, UTF-8)."""
    return json.dumps(message, separators=(",", ":")).encode()


def decode(data: bytes) -> JSONObject:
    """Deserialize one message; anything but a JSON object is an error the server answers INTERNAL."""
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError(f"expected a JSON object, got {type(message).__name__}")
    return message


class InventoryStub:
    """The client side of ``demo.Inventory`` on a ``grpc.aio`` channel (orders uses it)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.check = channel.unary_unary(f"/{INVENTORY}/Check", request_serializer=encode, response_deserializer=decode)
        self.warehouses = channel.unary_stream(
            f"/{INVENTORY}/Warehouses", request_serializer=encode, response_deserializer=decode
        )


class OrdersStub:
    """The client side of ``demo.Orders`` on a ``grpc.aio`` channel (the gateway uses it)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.place_order = channel.unary_unary(
            f"/{ORDERS}/PlaceOrder", request_serializer=encode, response_deserializer=decode
        )
