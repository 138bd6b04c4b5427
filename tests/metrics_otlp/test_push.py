"""OTLP metrics push from real gRPC and HTTP traffic into a real OTLPReceiver, over OTLP/gRPC and OTLP/HTTP."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from push_support import PushingFactory, grpc_calls, http_app, metric_value, points_named, scrape_buckets, wait_until
from support import grpc_echo as echo

import hoptel
from hoptel.metrics import LATENCY_BUCKETS
from hoptel.receiver import OTLPReceiver, ReceivedMetric
from hoptel.resource import SERVICE_INSTANCE_ID

PROTOCOLS = ["grpc", "http/protobuf"]
GRPC_LABELS = {"grpc_type": "unary", "grpc_service": echo.SERVICE, "grpc_method": "Unary"}


def _one(points: list[ReceivedMetric], **attributes: Any) -> ReceivedMetric:
    matching = [p for p in points if all(p.attributes.get(k) == v for k, v in attributes.items())]
    assert len(matching) == 1, matching
    return matching[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_grpc_durations_pushed_with_semconv_names_and_the_scraped_buckets(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any, protocol: str
) -> None:
    """Calls on a real gRPC server are pushed as rpc.{server,client}.call.duration (unit s), buckets as scraped."""
    tel = pushing(protocol)
    grpc_calls(tel, echo_server(tel), 5)
    assert tel.flush(10.0)

    for side in ("server", "client"):
        (point,) = points_named(receiver, f"rpc.{side}.call.duration")
        assert (point.kind, point.unit, point.temporality) == ("histogram", "s", "cumulative")
        assert point.attributes == {
            "rpc.system": "grpc",
            "rpc.service": echo.SERVICE,
            "rpc.method": "Unary",
            "rpc.grpc.status_code": 0,
        }
        bounds, counts = scrape_buckets(tel.registry, f"grpc_{side}_handling_seconds", GRPC_LABELS)
        assert point.explicit_bounds == tuple(bounds) == LATENCY_BUCKETS
        assert list(point.bucket_counts) == counts
        assert point.count == 5
        assert point.sum == pytest.approx(metric_value(tel, f"grpc_{side}_handling_seconds_sum", GRPC_LABELS))
        assert point.resource[SERVICE_INSTANCE_ID] == tel.tracer_provider.resource.attributes[SERVICE_INSTANCE_ID]  # type: ignore[attr-defined]  # the SDK provider
        assert point.protocol == ("grpc" if protocol == "grpc" else "http")
    assert metric_value(tel, "hoptel_metric_exports_total") == 1
    assert metric_value(tel, "hoptel_metric_export_failures_total") == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_exemplars_carry_trace_and_span_ids_of_exported_spans(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any, protocol: str
) -> None:
    """Each pushed exemplar names a trace and span that the receiver got as a span of the same side."""
    tel = pushing(protocol)
    grpc_calls(tel, echo_server(tel), 3)
    spans = receiver.wait_for_spans(6)
    assert tel.flush(10.0)

    for side, kind in (("server", "SERVER"), ("client", "CLIENT")):
        (point,) = points_named(receiver, f"rpc.{side}.call.duration")
        assert point.exemplars, point
        exported = {(s.trace_id, s.span_id) for s in spans if s.kind == kind}
        for exemplar in point.exemplars:
            assert (exemplar.trace_id, exemplar.span_id) in exported
            assert exemplar.value > 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_http_durations_pushed_with_semconv_attributes(
    receiver: OTLPReceiver, pushing: PushingFactory, asgi_server: Any, protocol: str
) -> None:
    """ASGI and httpx requests are pushed as http.{server,client}.request.duration with semconv attributes."""
    tel = pushing(protocol)
    base = asgi_server(hoptel.ASGIMiddleware(http_app(), tel))
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=tel), timeout=10) as client:
        assert client.get(f"{base}/items/1").status_code == 200
        assert client.get(f"{base}/items/2").status_code == 200
        assert client.get(f"{base}/down").status_code == 503
    assert tel.flush(10.0)

    server = points_named(receiver, "http.server.request.duration")
    ok = _one(server, **{"http.route": "/items/{item_id}"})
    assert ok.attributes == {
        "http.request.method": "GET",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
    }
    assert (ok.count, ok.unit) == (2, "s")
    down = _one(server, **{"http.route": "/down"})
    assert down.attributes["error.type"] == "503"
    bounds, counts = scrape_buckets(
        tel.registry,
        "http_server_request_duration_seconds",
        {"http_request_method": "GET", "http_route": "/items/{item_id}", "http_response_status_code": "200"},
    )
    assert (list(ok.explicit_bounds), list(ok.bucket_counts)) == (bounds, counts)

    client_points = points_named(receiver, "http.client.request.duration")
    ok_client = _one(client_points, **{"http.response.status_code": 200})
    assert ok_client.attributes == {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "http.response.status_code": 200,
    }
    assert ok_client.count == 2
    assert _one(client_points, **{"http.response.status_code": 503}).attributes["error.type"] == "503"


def test_cumulative_points_keep_their_start_and_grow(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any
) -> None:
    """Two cumulative pushes: the second counts every call so far, from the same start time."""
    tel = pushing()
    target = echo_server(tel)
    grpc_calls(tel, target, 3)
    assert tel.flush(10.0)
    grpc_calls(tel, target, 2)
    assert tel.flush(10.0)

    first, second = points_named(receiver, "rpc.server.call.duration")
    assert (first.count, second.count) == (3, 5)
    assert second.start_ns == first.start_ns
    assert second.time_ns > first.time_ns
    assert all(b >= a for a, b in zip(first.bucket_counts, second.bucket_counts, strict=True))


@pytest.mark.parametrize("preference", ["delta", "lowmemory"])
def test_delta_points_count_what_happened_since_the_last_push(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any, preference: str
) -> None:
    """Two delta pushes: each counts only its interval, and the second starts where the first ended."""
    tel = pushing(exporter_otlp_metrics_temporality_preference=preference)
    target = echo_server(tel)
    grpc_calls(tel, target, 3)
    assert tel.flush(10.0)
    grpc_calls(tel, target, 2)
    assert tel.flush(10.0)

    first, second = points_named(receiver, "rpc.server.call.duration")
    assert (first.temporality, second.temporality) == ("delta", "delta")
    assert (first.count, second.count) == (3, 2)
    assert second.start_ns == first.time_ns
    _, counts = scrape_buckets(tel.registry, "grpc_server_handling_seconds", GRPC_LABELS)
    assert [a + b for a, b in zip(first.bucket_counts, second.bucket_counts, strict=True)] == counts


def test_delta_leaves_out_series_with_nothing_new(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any
) -> None:
    """A delta push after no new calls sends no point for the series (and no request when no series moved)."""
    tel = pushing(exporter_otlp_metrics_temporality_preference="delta", traces_exporter="none")
    grpc_calls(tel, echo_server(tel), 2)
    assert tel.flush(10.0)
    requests = receiver.request_count["grpc"]
    assert tel.flush(10.0)

    assert [p.count for p in points_named(receiver, "rpc.server.call.duration")] == [2]
    assert receiver.request_count["grpc"] == requests


def test_rpc_semconv_opt_in_switches_the_attributes(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any
) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup pushes both attribute sets, as the spans carry them."""
    tel = pushing(semconv_stability_opt_in="rpc/dup")
    grpc_calls(tel, echo_server(tel), 1)
    assert tel.flush(10.0)

    (point,) = points_named(receiver, "rpc.server.call.duration")
    assert point.attributes == {
        "rpc.system": "grpc",
        "rpc.system.name": "grpc",
        "rpc.service": echo.SERVICE,
        "rpc.method": f"{echo.SERVICE}/Unary",
        "rpc.grpc.status_code": 0,
        "rpc.status_code": "OK",
    }


def test_new_rpc_semconv_alone(receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN=rpc pushes the release-candidate attributes only."""
    tel = pushing(semconv_stability_opt_in="rpc")
    grpc_calls(tel, echo_server(tel), 1)
    assert tel.flush(10.0)

    (point,) = points_named(receiver, "rpc.client.call.duration")
    assert point.attributes == {
        "rpc.system.name": "grpc",
        "rpc.method": f"{echo.SERVICE}/Unary",
        "rpc.status_code": "OK",
    }


@pytest.mark.parametrize(
    ("opt_in", "ok", "not_found"),
    [
        ("", {"rpc.grpc.status_code": 0}, {"rpc.grpc.status_code": 5}),
        ("rpc", {"rpc.status_code": "OK"}, {"rpc.status_code": "NOT_FOUND", "error.type": "NOT_FOUND"}),
    ],
)
def test_each_status_code_is_its_own_pushed_series_while_the_scrape_stays_per_method(
    receiver: OTLPReceiver,
    pushing: PushingFactory,
    echo_server: Any,
    opt_in: str,
    ok: dict[str, Any],
    not_found: dict[str, Any],
) -> None:
    """Calls ending OK and NOT_FOUND are pushed as two series with the spans' status attributes; one scraped."""
    tel = pushing(semconv_stability_opt_in=opt_in or None)
    target = echo_server(tel)
    grpc_calls(tel, target, 2)
    channel = grpc.intercept_channel(grpc.insecure_channel(target), hoptel.client_interceptor(tel))
    with channel, pytest.raises(grpc.RpcError) as failed:
        channel.unary_unary(echo.UNARY)(b"abort", timeout=10)
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    assert tel.flush(10.0)

    points = points_named(receiver, "rpc.client.call.duration")
    by_status = {tuple(sorted((k, v) for k, v in p.attributes.items() if k in {*ok, *not_found})): p for p in points}
    assert by_status.keys() == {tuple(sorted(ok.items())), tuple(sorted(not_found.items()))}
    assert by_status[tuple(sorted(ok.items()))].count == 2
    assert by_status[tuple(sorted(not_found.items()))].count == 1
    _, counts = scrape_buckets(tel.registry, "grpc_client_handling_seconds", GRPC_LABELS)
    assert sum(counts) == 3
    summed = [sum(c) for c in zip(*(p.bucket_counts for p in points), strict=True)]
    assert summed == counts


def test_the_interval_pushes_without_a_flush(receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any) -> None:
    """With a short OTEL_METRIC_EXPORT_INTERVAL the background thread pushes on its own, again and again."""
    tel = pushing(metric_export_interval=100)
    grpc_calls(tel, echo_server(tel), 1)

    # The receiver holds a push before the exporter, on its answer, counts it: wait for both.
    wait_until(lambda: len(points_named(receiver, "rpc.server.call.duration")) >= 2, "two periodic pushes")
    wait_until(lambda: metric_value(tel, "hoptel_metric_exports_total") >= 2, "two pushes counted")


def test_shutdown_pushes_what_is_left(receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any) -> None:
    """shutdown() makes a last push, so calls made after the last interval are not lost."""
    tel = pushing()
    grpc_calls(tel, echo_server(tel), 4)
    tel.shutdown(timeout=10.0)

    (point,) = points_named(receiver, "rpc.server.call.duration")
    assert point.count == 4


def test_nothing_is_pushed_before_the_first_call(receiver: OTLPReceiver, pushing: PushingFactory) -> None:
    """A push with no series yet sends no request (and counts as no failure)."""
    tel = pushing()
    assert tel.flush(10.0)
    assert receiver.request_count == {"grpc": 0, "http": 0}
    assert metric_value(tel, "hoptel_metric_export_failures_total") == 0


def test_otlp_alone_serves_no_prometheus_endpoint(pushing: PushingFactory) -> None:
    """OTEL_METRICS_EXPORTER=otlp without prometheus: metrics are pushed and no endpoint is served."""
    tel = pushing(metrics_exporter="otlp")
    assert tel.metrics_url is None


def test_prometheus_default_pushes_nothing(receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any) -> None:
    """Without otlp in OTEL_METRICS_EXPORTER nothing is pushed; the endpoint still serves the calls."""
    tel = pushing(metrics_exporter=None)
    grpc_calls(tel, echo_server(tel), 1)
    assert tel.flush(10.0)
    receiver.wait_for_spans(2)
    assert receiver.metrics() == []
    assert tel.metrics_url is not None
    assert httpx.get(tel.metrics_url).text.count("grpc_server_handling_seconds_count") == 1
