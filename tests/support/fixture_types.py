"""Types of the fixtures ``tests/conftest.py`` provides, for annotating the tests that take them."""

from __future__ import annotations

from collections.abc import Callable

import hoptel

__all__ = ["TelemetryFactory"]

TelemetryFactory = Callable[..., hoptel.Telemetry]
"""``make_telemetry(service_name="test-service", **settings) -> Telemetry``."""
