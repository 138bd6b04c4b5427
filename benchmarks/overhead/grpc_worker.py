"""gRPC servers and clients for W1, W2, W3, W5 and W6: raw-bytes echo services, sync and asyncio.

Requests and responses are plain bytes (no protobuf), so serialisation costs nothing and the hop itself is what
the numbers show. The service is ``hoptel.bench.Echo`` with ``Unary`` (echo, optionally burning CPU first) and
``ServerStream`` (the request echoed ``stream_messages`` times).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from itertools import repeat
from typing import Any

import grpc
import grpc.aio

from benchmarks.overhead.protocol import Command, ProtocolWriter, cpu_seconds, serve_commands, snapshot
from benchmarks.overhead.spec import ECHO_SERVICE, PAYLOAD, STREAM_METHOD, UNARY_METHOD, Workload
from benchmarks.overhead.stacks import Stack

__all__ = ["burn", "run_aio_client", "run_aio_server", "run_sync_client", "run_sync_server"]

_POOL_THREADS = 4


def burn(iterations: int) -> int:
    """Spend CPU deterministically: the same work in every variant (the launcher calibrates ``iterations``).

    The loop allocates nothing (``repeat`` yields None; every value stays a cached small int). A loop that
    allocates an int per step measures the heap instead: in processes that had merely imported OpenTelemetry it
    ran about 15 % faster than in bare ones, which swamps a 2 % target in either direction.
    """
    total = 0
    for _ in repeat(None, iterations):
        total = (total ^ 0x5A) & 0xFF
        total = (total + 3) & 0xFF
    return total


# -- sync --------------------------------------------------------------------------------------------------------


def _sync_handler(work: Workload, burn_iterations: int) -> grpc.GenericRpcHandler[Any, Any]:
    messages = work.stream_messages

    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        if burn_iterations:
            burn(burn_iterations)
        return request

    def server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for _ in range(messages):
            yield request

    return grpc.method_handlers_generic_handler(
        ECHO_SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        },
    )


def run_sync_server(writer: ProtocolWriter, stack: Stack, work: Workload, burn_iterations: int) -> None:
    """Serve the echo service on a loopback ephemeral port until the launcher says ``quit``."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_POOL_THREADS),
        handlers=[_sync_handler(work, burn_iterations)],
        interceptors=stack.grpc_server_interceptors(),
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    writer.send({"event": "ready", "port": port})
    try:
        serve_commands(writer, {"snap": lambda _: snapshot(stack.flush)})
    finally:
        server.stop(grace=1.0).wait()
        stack.shutdown()


def run_sync_client(writer: ProtocolWriter, stack: Stack, work: Workload, target: str) -> None:
    """Call the echo service when told: ``run`` performs ``ops`` operations and reports their CPU time."""
    channel = stack.grpc_channel(target)
    unary = channel.unary_unary(UNARY_METHOD, request_serializer=None, response_deserializer=None)
    stream = channel.unary_stream(STREAM_METHOD, request_serializer=None, response_deserializer=None)
    messages = work.stream_messages

    def run(command: Command) -> dict[str, Any]:
        ops = int(command["ops"])
        stack.flush()
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        if messages:
            received = 0
            for _ in range(ops // messages):
                for _message in stream(PAYLOAD):
                    received += 1
            ops = received
        else:
            for _ in range(ops):
                unary(PAYLOAD)
        stack.flush()
        return {"cpu": cpu_seconds() - cpu0, "wall": time.perf_counter() - wall0, "ops": ops}

    writer.send({"event": "ready"})
    try:
        serve_commands(writer, {"run": run, "snap": lambda _: snapshot(stack.flush)})
    finally:
        channel.close()
        stack.shutdown()


# -- asyncio -----------------------------------------------------------------------------------------------------


def _aio_handler(work: Workload, burn_iterations: int) -> grpc.GenericRpcHandler[Any, Any]:
    messages = work.stream_messages

    async def unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        if burn_iterations:
            burn(burn_iterations)
        return request

    async def server_stream(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
        for _ in range(messages):
            yield request

    return grpc.method_handlers_generic_handler(
        ECHO_SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        },
    )


def run_aio_server(writer: ProtocolWriter, stack: Stack, work: Workload, burn_iterations: int) -> None:
    """The asyncio twin of ``run_sync_server``; commands are read on a helper thread, the loop keeps serving."""

    async def main() -> None:
        server = grpc.aio.server(interceptors=stack.aio_server_interceptors())
        server.add_generic_rpc_handlers((_aio_handler(work, burn_iterations),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        writer.send({"event": "ready", "port": port})
        try:
            await asyncio.to_thread(serve_commands, writer, {"snap": lambda _: snapshot(stack.flush)})
        finally:
            await server.stop(grace=1.0)
            stack.shutdown()

    asyncio.run(main())


def run_aio_client(writer: ProtocolWriter, stack: Stack, work: Workload, target: str) -> None:
    """The asyncio twin of ``run_sync_client``: one event loop, calls awaited one after another."""
    loop = asyncio.new_event_loop()

    async def connect() -> grpc.aio.Channel:
        return stack.aio_channel(target)

    channel = loop.run_until_complete(connect())
    unary = channel.unary_unary(UNARY_METHOD, request_serializer=None, response_deserializer=None)

    async def calls(ops: int) -> None:
        for _ in range(ops):
            await unary(PAYLOAD)

    def run(command: Command) -> dict[str, Any]:
        ops = int(command["ops"])
        stack.flush()
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        loop.run_until_complete(calls(ops))
        stack.flush()
        return {"cpu": cpu_seconds() - cpu0, "wall": time.perf_counter() - wall0, "ops": ops}

    writer.send({"event": "ready"})
    try:
        serve_commands(writer, {"run": run, "snap": lambda _: snapshot(stack.flush)})
    finally:
        loop.run_until_complete(channel.close(grace=None))
        loop.close()
        stack.shutdown()
