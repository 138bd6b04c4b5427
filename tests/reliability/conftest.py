"""Fixtures for the reliability tests: exporter settings per OTLP protocol, and an instrumented echo client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from reliability_support import ECHO_METHOD, GRPC_OPTIONS, EchoCall, sync_grpc_server

import hoptel


@pytest.fixture(params=["grpc", "http/protobuf"])
def protocol(request: pytest.FixtureRequest) -> str:
    """Each OTLP protocol in turn."""
    return str(request.param)


@pytest.fixture
def echo_call() -> Iterator[Callable[[hoptel.Telemetry], EchoCall]]:
    """Start a sync echo server and an instrumented client for a Telemetry: ``echo_call(tel)(b"x") -> reply``."""
    stack: list[Any] = []

    def build(tel: hoptel.Telemetry) -> EchoCall:
        server = sync_grpc_server(hoptel.server_interceptor(tel))
        target = server.__enter__()
        channel = grpc.insecure_channel(target, options=GRPC_OPTIONS)
        stack.append((server, channel))
        call: EchoCall = grpc.intercept_channel(channel, hoptel.client_interceptor(tel)).unary_unary(
            ECHO_METHOD, None, None
        )
        return call

    yield build
    for server, channel in reversed(stack):
        channel.close()
        server.__exit__(None, None, None)
