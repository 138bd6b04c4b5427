"""Fixtures for the gRPC interceptor tests: the echo service on real servers (sync and aio) on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import grpc
import pytest
from grpc_support import CLIENT_WAYS, AioEcho, AioServe, SyncEcho, SyncServe, aio_client, sync_client
from support import grpc_echo as echo
from support.grpc_servers import aio_grpc_server, sync_grpc_server

import hoptel


@pytest.fixture
def serve_sync() -> Iterator[SyncServe]:
    """Start sync servers (echo service unless ``handler=``, plus ``extra=`` handlers); returns the target."""
    with contextlib.ExitStack() as stack:

        def start(
            *interceptors: Any,
            handler: grpc.GenericRpcHandler[Any, Any] | None = None,
            extra: Sequence[grpc.GenericRpcHandler[Any, Any]] = (),
        ) -> str:
            server = sync_grpc_server(handler or echo.sync_handler(), *extra, interceptors=list(interceptors))
            return stack.enter_context(server)

        yield start


@pytest.fixture
async def serve_aio() -> AsyncIterator[AioServe]:
    """Start grpc.aio servers (echo service unless ``handler=``, plus ``extra=`` handlers); returns the target."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            *interceptors: Any,
            handler: grpc.GenericRpcHandler[Any, Any] | None = None,
            extra: Sequence[grpc.GenericRpcHandler[Any, Any]] = (),
        ) -> str:
            server = aio_grpc_server(handler or echo.aio_handler(), *extra, interceptors=list(interceptors))
            return await stack.enter_async_context(server)

        yield start


@pytest.fixture(params=CLIENT_WAYS)
def sync_echo(request: pytest.FixtureRequest, telemetry: hoptel.Telemetry, serve_sync: SyncServe) -> Iterator[SyncEcho]:
    """Sync client and server, both instrumented with the test's Telemetry (the client either way)."""
    client = sync_client(telemetry, serve_sync(hoptel.server_interceptor(telemetry)), request.param)
    yield client
    client.channel.close()


@pytest.fixture(params=[(style, way) for style in ("generator", "reader_writer") for way in CLIENT_WAYS])
async def aio_echo(
    request: pytest.FixtureRequest, telemetry: hoptel.Telemetry, serve_aio: AioServe
) -> AsyncIterator[AioEcho]:
    """The aio client and server, both instrumented (the client either way).

    Streaming handlers are async generators or reader/writer style.
    """
    style, way = request.param
    handler = echo.aio_handler(reader_writer=style == "reader_writer")
    client = aio_client(telemetry, await serve_aio(hoptel.aio_server_interceptor(telemetry), handler=handler), way)
    yield client
    await client.channel.close()
