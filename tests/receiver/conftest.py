"""Fixtures for the receiver tests: real OTel SDK exporters pointed at a real receiver on loopback.

The ``receiver`` fixture (a started ``OTLPReceiver``) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from hoptel.receiver import OTLPReceiver

SERVICE = "checkout"
EXPORT_TIMEOUT_S = 3.0  # the SDK exporters retry within this budget; small keeps a failing test short

TracerProviderFactory = Callable[..., TracerProvider]
LoggerProviderFactory = Callable[..., LoggerProvider]


def span_exporter(receiver: OTLPReceiver, protocol: str, *, gzip: bool = False) -> SpanExporter:
    """A real OTLP span exporter for ``protocol`` ("grpc" or "http") aimed at ``receiver``."""
    if protocol == "grpc":
        return GrpcSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=EXPORT_TIMEOUT_S)
    return HttpSpanExporter(
        endpoint=f"{receiver.http_endpoint}/v1/traces",
        timeout=EXPORT_TIMEOUT_S,
        compression=Compression.Gzip if gzip else Compression.NoCompression,
    )


def log_exporter(receiver: OTLPReceiver, protocol: str) -> LogRecordExporter:
    """A real OTLP log exporter for ``protocol`` ("grpc" or "http") aimed at ``receiver``."""
    if protocol == "grpc":
        return GrpcLogExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=EXPORT_TIMEOUT_S)
    return HttpLogExporter(endpoint=f"{receiver.http_endpoint}/v1/logs", timeout=EXPORT_TIMEOUT_S)


@pytest.fixture(params=["grpc", "http"])
def protocol(request: pytest.FixtureRequest) -> str:
    """Each OTLP transport in turn."""
    value: str = request.param
    return value


@pytest.fixture
def make_tracer_provider(receiver: OTLPReceiver) -> Iterator[TracerProviderFactory]:
    """Build TracerProviders exporting each span synchronously to ``receiver`` over a protocol.

    ``factory(protocol, gzip=False, service="checkout")``; the resource also has ``deployment.env=test``.
    """
    made: list[TracerProvider] = []

    def factory(protocol: str, *, gzip: bool = False, service: str = SERVICE) -> TracerProvider:
        provider = TracerProvider(resource=Resource.create({"service.name": service, "deployment.env": "test"}))
        provider.add_span_processor(SimpleSpanProcessor(span_exporter(receiver, protocol, gzip=gzip)))
        made.append(provider)
        return provider

    yield factory
    for provider in made:
        provider.shutdown()


@pytest.fixture
def make_logger_provider(receiver: OTLPReceiver) -> Iterator[LoggerProviderFactory]:
    """Build LoggerProviders (service.name=checkout) exporting each record synchronously: ``factory(protocol)``."""
    made: list[LoggerProvider] = []

    def factory(protocol: str) -> LoggerProvider:
        provider = LoggerProvider(resource=Resource.create({"service.name": SERVICE}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter(receiver, protocol)))
        made.append(provider)
        return provider

    yield factory
    for provider in made:
        provider.shutdown()
