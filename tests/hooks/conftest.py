"""Fixtures for the hook tests: sync and aio gRPC servers of the test service on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from hooks_support import aio_handler, sync_handler
from support.grpc_servers import aio_grpc_server, sync_grpc_server


@pytest.fixture
def serve_grpc() -> Iterator[Callable[..., str]]:
    """Start sync servers of the test service with the given interceptors; returns the target."""
    with contextlib.ExitStack() as stack:
        yield lambda *interceptors: stack.enter_context(
            sync_grpc_server(sync_handler(), workers=4, interceptors=list(interceptors))
        )


@pytest.fixture
async def serve_aio_grpc() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start grpc.aio servers of the test service with the given interceptors; returns the target."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(*interceptors: Any) -> str:
            return await stack.enter_async_context(aio_grpc_server(aio_handler(), interceptors=list(interceptors)))

        yield start
