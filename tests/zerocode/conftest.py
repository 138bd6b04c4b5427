"""Fixtures for the zero-code tests: every test ends uninstrumented (hoptel's and the official instrumentors)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from opentelemetry.instrumentation.grpc import (
    GrpcAioInstrumentorClient,
    GrpcAioInstrumentorServer,
    GrpcInstrumentorClient,
    GrpcInstrumentorServer,
)
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from zerocode_support import sync_handler

import hoptel

OFFICIAL = (
    GrpcInstrumentorServer,
    GrpcInstrumentorClient,
    GrpcAioInstrumentorServer,
    GrpcAioInstrumentorClient,
    HTTPXClientInstrumentor,
)


@pytest.fixture(autouse=True)
def uninstrumented() -> Iterator[None]:
    """Undo hoptel.instrument() and any official instrumentor a test turned on, whatever the outcome."""
    yield
    hoptel.uninstrument()
    for instrumentor in OFFICIAL:
        if instrumentor().is_instrumented_by_opentelemetry:
            instrumentor().uninstrument()


@pytest.fixture
def plain_server() -> Iterator[Callable[..., str]]:
    """Start a sync server of the test service with plain ``grpc.server(pool, **kwargs)``; returns the target."""
    running: list[tuple[grpc.Server, ThreadPoolExecutor]] = []

    def start(**kwargs: Any) -> str:
        pool = ThreadPoolExecutor(max_workers=4)
        server = grpc.server(pool, **kwargs)
        server.add_generic_rpc_handlers([sync_handler()])
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        running.append((server, pool))
        return f"127.0.0.1:{port}"

    yield start
    for server, pool in running:
        server.stop(None).wait(5)
        pool.shutdown(wait=True)
