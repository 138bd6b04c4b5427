"""Fixtures for the OTLP metrics push tests: a Telemetry pushing to the test's receiver, a real echo server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from push_support import PushingFactory
from support import grpc_echo as echo
from support.grpc_servers import sync_grpc_server
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.receiver import OTLPReceiver


@pytest.fixture
def pushing(receiver: OTLPReceiver) -> Iterator[PushingFactory]:
    """Build Telemetry objects that push OTLP metrics (and export spans) to ``receiver``; shut down after the test.

    Defaults: spans and metrics over ``protocol`` (``grpc`` or ``http/protobuf``), the Prometheus endpoint on an
    ephemeral port too (``otlp,prometheus``), an export interval of an hour (so only ``flush()`` pushes), 2 s
    export timeout. Keyword arguments override any setting.
    """
    made: list[hoptel.Telemetry] = []

    def factory(protocol: str = "grpc", **settings: Any) -> hoptel.Telemetry:
        endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
        options: dict[str, Any] = {
            "exporter_otlp_protocol": protocol,
            "exporter_otlp_endpoint": endpoint,
            "bsp_schedule_delay": 50,
            "metrics_addr": "127.0.0.1:0",
            "metrics_exporter": "otlp,prometheus",
            "metric_export_interval": 3_600_000,
            "metric_export_timeout": 2_000,
            "log": "warning",
            "signals": False,
        }
        options.update(settings)
        tel = hoptel.setup("push-test", environ={}, install_global=False, **options)
        made.append(tel)
        return tel

    yield factory
    for tel in reversed(made):
        tel.shutdown(timeout=5.0)


@pytest.fixture
def echo_server() -> Iterator[Any]:
    """``start(telemetry) -> target``: the echo service on a real sync gRPC server with hoptel's interceptor."""
    with contextlib.ExitStack() as stack:

        def start(telemetry: hoptel.Telemetry) -> str:
            server = sync_grpc_server(echo.sync_handler(), interceptors=[hoptel.server_interceptor(telemetry)])
            return stack.enter_context(server)

        yield start


@pytest.fixture
def asgi_server() -> Iterator[Any]:
    """``start(app) -> base URL``: uvicorn serving ``app`` on loopback."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(run_uvicorn(app))
