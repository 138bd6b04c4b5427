"""Fixtures for the zero-code tests: every test ends uninstrumented (hoptel's and the official instrumentors)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.instrumentation.grpc import (
    GrpcAioInstrumentorClient,
    GrpcAioInstrumentorServer,
    GrpcInstrumentorClient,
    GrpcInstrumentorServer,
)
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from support.grpc_servers import sync_grpc_server
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
    with contextlib.ExitStack() as stack:
        yield lambda **kwargs: stack.enter_context(sync_grpc_server(sync_handler(), workers=4, **kwargs))
