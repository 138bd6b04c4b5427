"""Collector down, then back: requests never fail, the span queue stays bounded, losses are counted, export resumes.

Each test drives real instrumented gRPC calls (client and server spans) while the OTLP receiver is stopped, then
starts the receiver again on the same ports and keeps the load going until a span made after the restart arrives.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from reliability_support import EchoCall, echo_reply, exporter_settings, metric_value

import hoptel
from hoptel.receiver import OTLPReceiver, ReceivedSpan

QUEUE = 256
BATCH = 64
# More spans than the queue holds (2 per request), so the outage must drop and count some.
OUTAGE_REQUESTS = 1_000
# Bounds the "back again" phase; a span after the restart arrives long before this.
MAX_RECOVERY_REQUESTS = 20_000
RECOVERY_POLL_S = 0.05
# on_end checks the length and then appends, so concurrent threads may each add one past the bound.
QUEUE_SLACK = 16


def tagged(prefix: str) -> Callable[[ReceivedSpan], bool]:
    """Match the server spans of requests whose payload starts with ``prefix``."""
    return lambda span: str(span.attributes.get("rel.request", "")).startswith(prefix)


def keep_calling_until_received(receiver: OTLPReceiver, call: EchoCall, prefix: str) -> int:
    """Call ``prefix-N`` requests until one of their spans reaches ``receiver``; return how many calls it took.

    Spans of the first calls may be dropped (the queue is still full of older spans), so the load goes on.
    """
    for index in range(MAX_RECOVERY_REQUESTS):
        request = f"{prefix}{index}".encode()
        assert call(request, timeout=5) == echo_reply(request)
        try:
            receiver.wait_for_spans(1, timeout=RECOVERY_POLL_S, predicate=tagged(prefix))
        except TimeoutError:
            continue
        return index + 1
    raise AssertionError(f"no {prefix!r} span reached the collector after it recovered")


def test_collector_down_then_back(
    receiver: OTLPReceiver,
    make_telemetry: Callable[..., hoptel.Telemetry],
    echo_call: Callable[[hoptel.Telemetry], EchoCall],
    protocol: str,
) -> None:
    """Collector down: requests succeed, the queue stays bounded, losses are counted; back: spans flow again."""
    tel = make_telemetry(
        "collector-down",
        **exporter_settings(receiver, protocol),
        bsp_max_queue_size=QUEUE,
        bsp_max_export_batch_size=BATCH,
        exporter_otlp_timeout=500,
    )
    call = echo_call(tel)
    assert call(b"before", timeout=5) == echo_reply(b"before")
    receiver.wait_for_spans(1, predicate=tagged("before"))

    receiver.stop()
    peak_queue = 0.0
    for index in range(OUTAGE_REQUESTS):
        request = f"down-{index}".encode()
        assert call(request, timeout=5) == echo_reply(request)
        if index % 20 == 0:
            peak_queue = max(peak_queue, metric_value(tel, "hoptel_span_queue_length"))
    assert peak_queue <= QUEUE + QUEUE_SLACK
    dropped_during_outage = metric_value(tel, "hoptel_spans_dropped_total")
    assert dropped_during_outage > 0
    assert metric_value(tel, "hoptel_export_failures_total") > 0

    receiver.start()
    requests = 1 + OUTAGE_REQUESTS + keep_calling_until_received(receiver, call, "back-")

    # Every span that ended was either exported (and received) or counted as dropped: nothing vanished.
    assert tel.force_flush(timeout=10)
    exported = metric_value(tel, "hoptel_spans_exported_total")
    dropped = metric_value(tel, "hoptel_spans_dropped_total")
    assert exported + dropped == 2 * requests
    assert len(receiver.spans()) == exported


@pytest.mark.parametrize("status", ["unavailable", "resource_exhausted"])
def test_collector_refusing_then_accepting(
    receiver: OTLPReceiver,
    make_telemetry: Callable[..., hoptel.Telemetry],
    echo_call: Callable[[hoptel.Telemetry], EchoCall],
    protocol: str,
    status: str,
) -> None:
    """A collector refusing every export (503/429, UNAVAILABLE/...) fails no request; spans flow once it accepts."""
    tel = make_telemetry(
        "collector-refusing",
        **exporter_settings(receiver, protocol),
        bsp_max_queue_size=QUEUE,
        bsp_max_export_batch_size=BATCH,
        exporter_otlp_timeout=500,
    )
    call = echo_call(tel)
    receiver.fail_with(status)  # type: ignore[arg-type]  # a FailureStatus literal, parametrized
    for index in range(OUTAGE_REQUESTS):
        request = f"refused-{index}".encode()
        assert call(request, timeout=5) == echo_reply(request)
    receiver.wait_for_requests(1)
    assert metric_value(tel, "hoptel_span_queue_length") <= QUEUE + QUEUE_SLACK

    receiver.fail_with(None)
    requests = OUTAGE_REQUESTS + keep_calling_until_received(receiver, call, "accepted-")
    assert tel.force_flush(timeout=10)
    assert metric_value(tel, "hoptel_export_failures_total") > 0
    exported = metric_value(tel, "hoptel_spans_exported_total")
    dropped = metric_value(tel, "hoptel_spans_dropped_total")
    assert exported + dropped == 2 * requests
    assert len(receiver.spans()) == exported
