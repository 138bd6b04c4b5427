"""Fixtures for the gRPC interceptor tests: the echo service on real servers (sync and aio) on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from grpc_support import AioEcho, AioServe, SyncEcho, SyncServe, aio_client, sync_client
from support import grpc_echo as echo

import hoptel


@pytest.fixture
def serve_sync() -> Iterator[SyncServe]:
    """Start sync servers (echo service unless ``handler=``, plus ``extra=`` handlers); returns the target."""
    running: list[tuple[grpc.Server, ThreadPoolExecutor]] = []

    def start(
        *interceptors: Any, handler: grpc.GenericRpcHandler | None = None, extra: Sequence[grpc.GenericRpcHandler] = ()
    ) -> str:
        pool = ThreadPoolExecutor(max_workers=8)
        server = grpc.server(pool, interceptors=list(interceptors))
        server.add_generic_rpc_handlers([handler or echo.sync_handler(), *extra])
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        running.append((server, pool))
        return f"127.0.0.1:{port}"

    yield start
    for server, pool in running:
        server.stop(None).wait(5)
        pool.shutdown(wait=True)


@pytest.fixture
async def serve_aio() -> AsyncIterator[AioServe]:
    """Start grpc.aio servers (echo service unless ``handler=``, plus ``extra=`` handlers); returns the target."""
    running: list[grpc.aio.Server] = []

    async def start(
        *interceptors: Any, handler: grpc.GenericRpcHandler | None = None, extra: Sequence[grpc.GenericRpcHandler] = ()
    ) -> str:
        server = grpc.aio.server(interceptors=list(interceptors))
        server.add_generic_rpc_handlers([handler or echo.aio_handler(), *extra])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        running.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in running:
        await server.stop(None)


@pytest.fixture
def sync_echo(telemetry: hoptel.Telemetry, serve_sync: SyncServe) -> Iterator[SyncEcho]:
    """Sync client and server, both instrumented with the test's Telemetry."""
    client = sync_client(telemetry, serve_sync(hoptel.server_interceptor(telemetry)))
    yield client
    client.channel.close()


@pytest.fixture(params=["generator", "reader_writer"])
async def aio_echo(
    request: pytest.FixtureRequest, telemetry: hoptel.Telemetry, serve_aio: AioServe
) -> AsyncIterator[AioEcho]:
    """The aio client and server, both instrumented; streaming handlers as async generators or reader/writer."""
    handler = echo.aio_handler(reader_writer=request.param == "reader_writer")
    client = aio_client(telemetry, await serve_aio(hoptel.aio_server_interceptor(telemetry), handler=handler))
    yield client
    await client.channel.close()
