"""The receiver's metrics: OTLP MetricsService over gRPC and POST /v1/metrics, points, quantiles, the series view."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from hoptel.receiver import OTLPReceiver, ReceivedMetric, format_metrics, summarize_metrics

BOUNDS = (0.001, 0.01, 0.1)


def _exporter(receiver: OTLPReceiver, protocol: str) -> MetricExporter:
    if protocol == "grpc":
        return GrpcMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
    return HttpMetricExporter(endpoint=f"{receiver.http_endpoint}/v1/metrics", timeout=5)


@pytest.fixture
def provider_for(receiver: OTLPReceiver) -> Iterator[dict[str, MeterProvider]]:
    """OTel SDK MeterProviders exporting to the receiver, by protocol; shut down after the test."""
    made: dict[str, MeterProvider] = {}
    for protocol in ("grpc", "http"):
        reader = PeriodicExportingMetricReader(_exporter(receiver, protocol), export_interval_millis=3_600_000)
        made[protocol] = MeterProvider(
            metric_readers=[reader],
            resource=Resource.create({"service.name": f"sdk-{protocol}", "service.instance.id": f"i-{protocol}"}),
            views=[View(instrument_name="*.duration", aggregation=ExplicitBucketHistogramAggregation(BOUNDS))],
        )
    yield made
    for provider in made.values():
        provider.shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_histogram_counter_and_gauge_arrive(
    receiver: OTLPReceiver, provider_for: dict[str, MeterProvider], protocol: str
) -> None:
    """An SDK's histogram, counter and gauge points arrive with their names, units, attributes and values."""
    provider = provider_for[protocol]
    meter = provider.get_meter("tests.receiver")
    histogram = meter.create_histogram("demo.duration", unit="s")
    for value in (0.0005, 0.005, 0.005, 0.05):
        histogram.record(value, {"route": "/a"})
    meter.create_counter("demo.calls").add(7, {"route": "/a"})
    meter.create_gauge("demo.level", unit="1").set(3.5)
    assert provider.force_flush(10_000)

    points = receiver.wait_for_metrics(3)
    by_name = {p.name: p for p in points}
    duration = by_name["demo.duration"]
    assert (duration.kind, duration.unit, duration.temporality) == ("histogram", "s", "cumulative")
    assert duration.attributes == {"route": "/a"}
    assert duration.explicit_bounds == BOUNDS
    assert duration.bucket_counts == (1, 2, 1, 0)
    assert duration.count == 4
    assert duration.sum == pytest.approx(0.0605)
    assert duration.protocol == protocol
    assert (duration.service_name, duration.instance_id) == (f"sdk-{protocol}", f"i-{protocol}")
    assert (by_name["demo.calls"].kind, by_name["demo.calls"].sum) == ("sum", 7.0)
    assert (by_name["demo.level"].kind, by_name["demo.level"].sum) == ("gauge", 3.5)


def test_wait_for_metrics_times_out_listing_what_arrived(receiver: OTLPReceiver) -> None:
    """wait_for_metrics raises TimeoutError naming what did arrive when too few points match."""
    with pytest.raises(TimeoutError, match="nothing arrived"):
        receiver.wait_for_metrics(1, timeout=0.2)


def test_http_metrics_path_answers_with_a_metrics_response(receiver: OTLPReceiver) -> None:
    """POST /v1/metrics with an empty request gets 200 and an ExportMetricsServiceResponse body."""
    response = httpx.post(
        f"{receiver.http_endpoint}/v1/metrics",
        content=ExportMetricsServiceRequest().SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert receiver.request_count["http"] == 1


def test_refused_metrics_are_counted_and_dropped(
    receiver: OTLPReceiver, provider_for: dict[str, MeterProvider]
) -> None:
    """A metrics export refused by fail_with is counted as a request and its points are not stored."""
    receiver.fail_with("unavailable")
    meter = provider_for["http"].get_meter("tests.receiver")
    meter.create_counter("demo.calls").add(1)
    provider_for["http"].force_flush(10_000)
    receiver.wait_for_requests(1, "http")
    assert receiver.metrics() == []


def _point(counts: tuple[int, ...], instance: str, temporality: str = "cumulative", time_ns: int = 1) -> ReceivedMetric:
    return ReceivedMetric(
        "rpc.server.call.duration",
        "s",
        "histogram",
        temporality,  # type: ignore[arg-type]  # the literal is one of Temporality's
        {"rpc.method": "Get"},
        {"service.instance.id": instance},
        time_ns=time_ns,
        count=sum(counts),
        bucket_counts=counts,
        explicit_bounds=BOUNDS,
    )


def test_quantiles_are_interpolated_inside_the_bucket() -> None:
    """p50 and p99 interpolate linearly in the bucket holding the rank; a rank in +Inf gives the top bound."""
    point = _point((0, 10, 0, 0), "a")
    assert point.quantile(0.5) == pytest.approx(0.0055)
    assert point.quantile(0.99) == pytest.approx(0.001 + 0.009 * 0.99)
    assert _point((0, 0, 0, 4), "a").quantile(0.5) == 0.1
    assert _point((0, 0, 0, 0), "a").quantile(0.5) is None


def test_series_take_each_process_latest_cumulative_point_and_add_deltas() -> None:
    """Cumulative points count once per process (the latest); delta points add up; processes are summed."""
    points = [
        _point((1, 0, 0, 0), "a", time_ns=1),
        _point((3, 1, 0, 0), "a", time_ns=2),  # supersedes a's first point
        _point((0, 2, 0, 0), "b", time_ns=1),
        _point((0, 0, 1, 0), "c", "delta"),
        _point((0, 0, 1, 0), "c", "delta"),
    ]
    (series,) = summarize_metrics(points)
    assert series.merged.bucket_counts == (3, 3, 2, 0)
    assert series.count == 8
    assert series.instances == 3
    line = format_metrics(points)
    assert line.startswith("rpc.server.call.duration{rpc.method=Get}  count=8  p50=")
    assert line.endswith("processes=3")


def test_format_metrics_skips_non_histograms() -> None:
    """The compact view lists histogram series only."""
    counter = ReceivedMetric("demo.calls", "", "sum", "cumulative", sum=3.0)
    assert format_metrics([counter]) == ""


def test_on_metrics_listener_gets_each_stored_batch_and_its_failure_is_contained() -> None:
    """on_metrics is called with each stored batch; a listener that raises does not fail the export."""
    batches: list[list[ReceivedMetric]] = []

    def listener(points: Sequence[ReceivedMetric]) -> None:
        batches.append(list(points))
        raise RuntimeError("listener bug")

    with OTLPReceiver(on_metrics=listener) as rx:
        exporter = GrpcMetricExporter(endpoint=rx.grpc_endpoint, insecure=True, timeout=5)
        provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, 3_600_000)])
        try:
            provider.get_meter("tests.receiver").create_counter("demo.calls").add(2)
            assert provider.force_flush(10_000)
        finally:
            provider.shutdown()
        # force_flush, then shutdown's own last export: two batches of one point each, both stored
        assert [[(p.name, p.sum) for p in batch] for batch in batches] == [[("demo.calls", 2.0)]] * 2
        assert len(rx.metrics()) == 2
