"""setup(): the OTLP pipeline into a real receiver, the guard, disabling, and many Telemetry objects in one process."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.telemetry import current


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_manual_span_reaches_receiver_with_resource(receiver: OTLPReceiver, protocol: str) -> None:
    """A span made with the OTel API arrives over either protocol with service.name and resource attributes."""
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    tel = hoptel.setup(
        "orders",
        environ={
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=hops",
            "HOPTEL_METRICS_ADDR": "off",
        },
    )
    with tel, trace.get_tracer("test").start_as_current_span("manual") as span:
        span.set_attribute("answer", 42)
    (received,) = receiver.wait_for_spans(1, timeout=10)
    assert received.name == "manual"
    assert received.service_name == "orders"
    assert received.resource["deployment.environment"] == "test"
    assert received.resource["team"] == "hops"
    assert received.attributes["answer"] == 42
    assert received.protocol == ("grpc" if protocol == "grpc" else "http")


def test_shutdown_flushes_everything_accepted(receiver: OTLPReceiver) -> None:
    """Spans queued with a long batch delay still all arrive once shutdown() returns."""
    tel = hoptel.setup(
        "flush",
        environ={},
        exporter_otlp_protocol="grpc",
        exporter_otlp_endpoint=receiver.grpc_endpoint,
        bsp_schedule_delay=60_000,
        metrics_addr="off",
    )
    tracer = tel.tracer_provider.get_tracer("test")
    for index in range(300):
        tracer.start_span(f"span-{index}").end()
    tel.shutdown(timeout=10)
    spans = receiver.wait_for_spans(300, timeout=5)
    assert sorted(s.name for s in spans) == sorted(f"span-{i}" for i in range(300))
    assert tel.self_metrics.spans_exported.value == 300


def test_shutdown_is_idempotent_and_guard_shuts_down(receiver: OTLPReceiver) -> None:
    """Leaving the with-block shuts down; calling shutdown() again is harmless."""
    with hoptel.setup("guard", environ={}, traces_exporter="none", metrics_addr="off") as tel:
        assert not tel.closed
    assert tel.closed
    tel.shutdown()
    assert tel.closed


def test_each_telemetry_owns_its_provider_and_registry(make_telemetry: object) -> None:
    """Two setup() calls give two providers and two isolated registries; the latest becomes the default."""
    first = hoptel.setup("one", environ={}, traces_exporter="none", metrics_addr="off")
    second = hoptel.setup("two", environ={}, traces_exporter="none", metrics_addr="off")
    try:
        assert first.tracer_provider is not second.tracer_provider
        assert first.registry is not second.registry
        assert isinstance(second.tracer_provider, TracerProvider)
        assert current() is second
        assert current(first) is first
        assert trace.get_tracer_provider() is second.tracer_provider
    finally:
        first.shutdown()
        second.shutdown()


def test_sdk_disabled_gives_working_noop() -> None:
    """OTEL_SDK_DISABLED=true: setup() works, spans are non-recording, nothing is served."""
    with hoptel.setup("off", environ={"OTEL_SDK_DISABLED": "true"}) as tel:
        assert not tel.enabled
        assert tel.metrics_url is None
        span = tel.tracer_provider.get_tracer("t").start_span("x")
        assert not span.is_recording()


def test_metrics_url_reports_ephemeral_port() -> None:
    """metrics_addr with port 0 yields a concrete loopback URL."""
    with hoptel.setup("m", environ={}, traces_exporter="none", metrics_addr="127.0.0.1:0") as tel:
        assert tel.metrics_url is not None
        assert tel.metrics_url.startswith("http://127.0.0.1:")
        assert not tel.metrics_url.startswith("http://127.0.0.1:0/")


def test_export_failure_is_counted_not_raised() -> None:
    """With no collector listening, exporting fails quietly and is counted in hoptel_export_failures_total."""
    tel = hoptel.setup(
        "lonely",
        environ={},
        exporter_otlp_protocol="http/protobuf",
        exporter_otlp_endpoint="http://127.0.0.1:9",
        exporter_otlp_timeout=200,
        bsp_schedule_delay=10,
        metrics_addr="off",
    )
    with tel:
        tel.tracer_provider.get_tracer("t").start_span("lost").end()
        tel.force_flush(timeout=5)
    assert tel.self_metrics.export_failures.value >= 1
    assert tel.self_metrics.spans_dropped.value >= 1
