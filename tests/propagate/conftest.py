"""Fixtures for the hoptel.propagate tests: the default propagator and a private SDK tracer provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hoptel.propagate import Propagator


@pytest.fixture
def prop() -> Propagator:
    """The default propagator (tracecontext,baggage)."""
    return Propagator()


@pytest.fixture
def tracer_provider() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A private SDK TracerProvider (not the global one) recording finished spans in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()
