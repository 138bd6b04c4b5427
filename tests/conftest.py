"""Shared fixtures: a real OTLP receiver on loopback, a Telemetry exporting into it, a refused URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.fixture_types import TelemetryFactory
from support.ports import free_port

import hoptel
from hoptel.receiver import OTLPReceiver


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    """A started OTLPReceiver (OTLP/gRPC and OTLP/HTTP on ephemeral loopback ports)."""
    with OTLPReceiver() as rx:
        yield rx


@pytest.fixture
def make_telemetry(receiver: OTLPReceiver) -> Iterator[TelemetryFactory]:
    """Build Telemetry objects exporting to ``receiver`` quickly; all are shut down after the test.

    Defaults: OTLP/gRPC, 50 ms batch delay, metrics endpoint off; keyword arguments override any setting.
    """
    made: list[hoptel.Telemetry] = []

    def factory(service_name: str = "test-service", **overrides: Any) -> hoptel.Telemetry:
        settings: dict[str, Any] = {
            "exporter_otlp_protocol": "grpc",
            "exporter_otlp_endpoint": receiver.grpc_endpoint,
            "bsp_schedule_delay": 50,
            "metrics_addr": "off",
        }
        settings.update(overrides)
        tel = hoptel.setup(service_name, environ={}, **settings)
        made.append(tel)
        return tel

    yield factory
    for tel in reversed(made):
        tel.shutdown(timeout=5.0)


@pytest.fixture
def telemetry(make_telemetry: TelemetryFactory) -> hoptel.Telemetry:
    """One Telemetry exporting to the test's receiver over OTLP/gRPC."""
    return make_telemetry()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL whose port nothing listens on (bound, then released)."""
    return f"http://127.0.0.1:{free_port()}/nothing"
