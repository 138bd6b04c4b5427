"""A metrics collector that is down, refuses or hangs: no call is lost or failed, and the self-metrics show it."""

from __future__ import annotations

import threading
from typing import Any

from push_support import PushingFactory, grpc_calls, metric_value, points_named, wait_until

from hoptel.receiver import OTLPReceiver

FAILURES = "hoptel_metric_export_failures_total"
EXPORTS = "hoptel_metric_exports_total"
SERVER_COUNT = "grpc_server_handling_seconds_count"
LABELS = {"grpc_type": "unary", "grpc_service": "hoptel.test.Echo", "grpc_method": "Unary"}


def test_collector_down(receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any) -> None:
    """With the receiver stopped every call still succeeds and is counted; the failed push is counted."""
    tel = pushing("http/protobuf", metric_export_timeout=1_000, traces_exporter="none")
    target = echo_server(tel)
    receiver.stop()

    grpc_calls(tel, target, 3)
    assert not tel.flush(10.0)

    assert metric_value(tel, SERVER_COUNT, LABELS) == 3
    assert metric_value(tel, FAILURES) == 1
    assert metric_value(tel, EXPORTS) == 0


def test_refusing_collector_then_recovery_sends_the_refused_counts(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any
) -> None:
    """Refused pushes are counted as failures; with delta, the next accepted push carries their counts too."""
    tel = pushing(
        metric_export_timeout=1_000, exporter_otlp_metrics_temporality_preference="delta", traces_exporter="none"
    )
    target = echo_server(tel)
    receiver.fail_with("unavailable")

    grpc_calls(tel, target, 3)
    assert not tel.flush(10.0)
    assert metric_value(tel, FAILURES) == 1
    assert receiver.request_count["grpc"] >= 1
    assert points_named(receiver, "rpc.server.call.duration") == []

    receiver.fail_with(None)
    grpc_calls(tel, target, 2)
    assert tel.flush(10.0)

    (point,) = points_named(receiver, "rpc.server.call.duration")
    assert point.count == 5
    assert metric_value(tel, EXPORTS) == 1


def test_hanging_collector_neither_blocks_nor_fails_calls(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any
) -> None:
    """Calls made while a push hangs in the collector complete normally; the push times out and is counted."""
    tel = pushing(metric_export_timeout=1_000, traces_exporter="none")
    target = echo_server(tel)
    grpc_calls(tel, target, 1)
    receiver.delay_s = 30.0
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(tel.flush(20.0)))
    flusher.start()
    receiver.wait_for_requests(1)  # the push is now held by the collector

    grpc_calls(tel, target, 3)  # each call must return OK (asserted inside)
    assert metric_value(tel, SERVER_COUNT, LABELS) == 4

    flusher.join(20.0)
    assert flushed == [False]
    wait_until(lambda: metric_value(tel, FAILURES) >= 1, "the timed-out push to be counted")
    receiver.delay_s = 0.0
