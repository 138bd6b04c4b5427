"""A four-hop chain across both stacks is one trace: sync client -> sync server -> aio client -> aio server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import grpc
import pytest
from grpc_support import AioEcho, SyncServe, aio_client, sync_client
from support import grpc_echo as echo

import hoptel
from hoptel.receiver import OTLPReceiver

T = TypeVar("T")

RELAY = "/hoptel.test.Relay/Relay"


class LoopThread:
    """An event loop running in its own thread, for aio servers and channels next to sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="aio-loop", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coroutine`` on the loop from another thread; the caller's context goes with it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    """A background event loop, stopped after the test."""
    thread = LoopThread()
    yield thread
    thread.close()


def _relay_handler(downstream: Callable[[], bytes]) -> grpc.GenericRpcHandler:
    def relay(request: bytes, context: grpc.ServicerContext) -> bytes:
        return downstream()

    return grpc.method_handlers_generic_handler(
        "hoptel.test.Relay", {"Relay": grpc.unary_unary_rpc_method_handler(relay)}
    )


def test_sync_to_aio_chain_is_one_trace(
    make_telemetry: Callable[..., hoptel.Telemetry],
    receiver: OTLPReceiver,
    serve_sync: SyncServe,
    loop_thread: LoopThread,
) -> None:
    """Edge (sync client) -> orders (sync server, aio client) -> inventory (aio server): one trace, right parents."""
    edge = make_telemetry("edge")
    orders = make_telemetry("orders")
    inventory = make_telemetry("inventory")

    async def start_inventory() -> tuple[grpc.aio.Server, AioEcho]:
        server = grpc.aio.server(interceptors=[hoptel.aio_server_interceptor(inventory)])
        server.add_generic_rpc_handlers([echo.aio_handler()])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, aio_client(orders, f"127.0.0.1:{port}")

    inventory_server, to_inventory = loop_thread.run(start_inventory())

    async def call_inventory() -> bytes:
        streamed = [response async for response in to_inventory.server_stream(b"2")]
        echoed = [response async for response in to_inventory.bidi(iter([b"x", b"y"]))]
        return b",".join(streamed + echoed)

    target = serve_sync(
        hoptel.server_interceptor(orders), handler=_relay_handler(lambda: loop_thread.run(call_inventory()))
    )
    to_orders = sync_client(edge, target)
    try:
        assert to_orders.channel.unary_unary(RELAY)(b"go") == b"0,1,x,y"
    finally:
        to_orders.channel.close()
        loop_thread.run(to_inventory.channel.close())
        loop_thread.run(inventory_server.stop(None))

    spans = receiver.wait_for_spans(6)
    assert len({span.trace_id for span in spans}) == 1
    found = {(span.service_name, span.kind, span.name): span for span in spans}
    edge_client = found["edge", "CLIENT", "hoptel.test.Relay/Relay"]
    orders_server = found["orders", "SERVER", "hoptel.test.Relay/Relay"]
    stream_client = found["orders", "CLIENT", "hoptel.test.Echo/ServerStream"]
    stream_server = found["inventory", "SERVER", "hoptel.test.Echo/ServerStream"]
    bidi_client = found["orders", "CLIENT", "hoptel.test.Echo/Bidi"]
    bidi_server = found["inventory", "SERVER", "hoptel.test.Echo/Bidi"]
    assert edge_client.parent_span_id is None
    assert orders_server.parent_span_id == edge_client.span_id
    assert stream_client.parent_span_id == orders_server.span_id
    assert bidi_client.parent_span_id == orders_server.span_id
    assert stream_server.parent_span_id == stream_client.span_id
    assert bidi_server.parent_span_id == bidi_client.span_id
    assert all(span.status_code == "UNSET" for span in spans)
