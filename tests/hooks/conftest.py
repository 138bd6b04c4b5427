"""Fixtures for the hook tests: sync and aio gRPC servers of the test service on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from hooks_support import aio_handler, sync_handler


@pytest.fixture
def serve_grpc() -> Iterator[Callable[..., str]]:
    """Start sync servers of the test service with the given interceptors; returns the target."""
    running: list[tuple[grpc.Server, ThreadPoolExecutor]] = []

    def start(*interceptors: Any) -> str:
        pool = ThreadPoolExecutor(max_workers=4)
        server = grpc.server(pool, interceptors=list(interceptors))
        server.add_generic_rpc_handlers([sync_handler()])
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        running.append((server, pool))
        return f"127.0.0.1:{port}"

    yield start
    for server, pool in running:
        server.stop(None).wait(5)
        pool.shutdown(wait=True)


@pytest.fixture
async def serve_aio_grpc() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start grpc.aio servers of the test service with the given interceptors; returns the target."""
    running: list[grpc.aio.Server] = []

    async def start(*interceptors: Any) -> str:
        server = grpc.aio.server(interceptors=list(interceptors))
        server.add_generic_rpc_handlers([aio_handler()])
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        running.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in running:
        await server.stop(None)
