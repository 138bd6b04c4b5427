"""A slow or refusing collector: requests are not slowed, retries follow the OTLP rules, shutdown() keeps its timeout.

"Not slowed" is shown by comparing distributions, not by absolute times: the median request latency while an
export is stuck (held 2 s by the collector, or refused and being retried) is within a small factor of the median
with a healthy collector, measured in interleaved rounds so machine noise hits both alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from reliability_support import (
    ECHO_METHOD,
    EchoCall,
    aio_grpc_server,
    echo_reply,
    exporter_settings,
    median,
    metric_value,
)

import hoptel
from hoptel.receiver import OTLPReceiver

ROUNDS = 2
REQUESTS_PER_ROUND = 150
# Generous: the request path does not wait for exports at all, so the medians are close; the factor absorbs noise.
MEDIAN_FACTOR = 3.0
SLOW_COLLECTOR_S = 2.0
SHUTDOWN_TIMEOUT_S = 0.5
# What shutdown() may take beyond its timeout: closing the exporter and joining the worker for a moment.
SHUTDOWN_SLACK_S = 1.0
WAIT_S = 15.0


def _measure(call: EchoCall, label: str, n: int) -> list[float]:
    latencies = []
    for index in range(n):
        request = f"{label}-{index}".encode()
        started = time.perf_counter()
        reply = call(request, timeout=5)
        latencies.append(time.perf_counter() - started)
        assert reply == echo_reply(request)
    return latencies


def _make_trouble(receiver: OTLPReceiver, trouble: str) -> None:
    if trouble == "slow":
        receiver.delay_s = SLOW_COLLECTOR_S
    else:
        receiver.fail_with(trouble, retry_after_s=1.0)  # type: ignore[arg-type]  # a FailureStatus, parametrized


def _heal(receiver: OTLPReceiver) -> None:
    receiver.delay_s = 0.0
    receiver.fail_with(None)


@pytest.mark.parametrize("trouble", ["slow", "unavailable", "resource_exhausted"])
def test_requests_are_not_slowed_by_a_troubled_collector(
    receiver: OTLPReceiver,
    make_telemetry: Callable[..., hoptel.Telemetry],
    echo_call: Callable[[hoptel.Telemetry], EchoCall],
    protocol: str,
    trouble: str,
) -> None:
    """While an export is held or refused, the median request latency stays within a small factor of healthy."""
    tel = make_telemetry("troubled", **exporter_settings(receiver, protocol), bsp_max_queue_size=8192)
    call = echo_call(tel)
    _measure(call, "warm-up", 50)
    healthy: list[float] = []
    troubled: list[float] = []
    for round_index in range(ROUNDS):
        _heal(receiver)
        healthy += _measure(call, f"healthy-{round_index}", REQUESTS_PER_ROUND)
        _make_trouble(receiver, trouble)
        # An export is now under way against the troubled collector: the next export request is held or refused.
        receiver.wait_for_requests(sum(receiver.request_count.values()) + 1, timeout=WAIT_S)
        troubled += _measure(call, f"troubled-{round_index}", REQUESTS_PER_ROUND)
    _heal(receiver)
    assert median(troubled) <= MEDIAN_FACTOR * median(healthy), (median(troubled), median(healthy))


async def test_aio_requests_are_not_slowed_by_a_slow_collector(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry], protocol: str
) -> None:
    """grpc.aio: while an export is held for 2 s, the median RPC latency stays within a small factor of healthy."""
    tel = make_telemetry("troubled-aio", **exporter_settings(receiver, protocol), bsp_max_queue_size=8192)
    async with (
        aio_grpc_server(hoptel.aio_server_interceptor(tel)) as target,
        grpc.aio.insecure_channel(target, interceptors=_aio_client_interceptors(tel)) as channel,
    ):
        call = channel.unary_unary(ECHO_METHOD, None, None)

        async def measure(label: str, n: int) -> list[float]:
            latencies = []
            for index in range(n):
                request = f"{label}-{index}".encode()
                started = time.perf_counter()
                reply = await call(request, timeout=5)
                latencies.append(time.perf_counter() - started)
                assert reply == echo_reply(request)
            return latencies

        await measure("warm-up", 50)
        healthy: list[float] = []
        troubled: list[float] = []
        for round_index in range(ROUNDS):
            _heal(receiver)
            healthy += await measure(f"healthy-{round_index}", REQUESTS_PER_ROUND)
            receiver.delay_s = SLOW_COLLECTOR_S
            await asyncio.to_thread(receiver.wait_for_requests, sum(receiver.request_count.values()) + 1, None, WAIT_S)
            troubled += await measure(f"troubled-{round_index}", REQUESTS_PER_ROUND)
        _heal(receiver)
    assert median(troubled) <= MEDIAN_FACTOR * median(healthy), (median(troubled), median(healthy))


def _aio_client_interceptors(tel: hoptel.Telemetry) -> list[Any]:
    """The channel's interceptor list (grpc-stubs types it too narrowly for an interceptor object)."""
    return hoptel.aio_client_interceptors(tel)


def _one_span(tel: hoptel.Telemetry, name: str = "retried") -> None:
    tel.tracer_provider.get_tracer("reliability").start_span(name).end()


@pytest.mark.parametrize("status", ["unavailable", "resource_exhausted"])
def test_refusals_are_retried_after_the_advised_delay(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry], protocol: str, status: str
) -> None:
    """Two refusals advising a retry delay (RetryInfo / Retry-After) are retried: 3 requests, the span arrives once."""
    tel = make_telemetry("retry", **exporter_settings(receiver, protocol))
    receiver.fail_with(status, retry_after_s=0.0, times=2)  # type: ignore[arg-type]  # a FailureStatus
    _one_span(tel)
    (span,) = receiver.wait_for_spans(1, timeout=WAIT_S)
    assert span.name == "retried"
    assert tel.force_flush(timeout=WAIT_S)
    assert sum(receiver.request_count.values()) == 3
    assert metric_value(tel, "hoptel_spans_exported_total") == 1
    assert metric_value(tel, "hoptel_export_failures_total") == 0
    assert metric_value(tel, "hoptel_spans_dropped_total") == 0


def test_unavailable_without_advice_backs_off_and_retries(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry], protocol: str
) -> None:
    """UNAVAILABLE / 503 without a retry delay is retried with exponential backoff until it succeeds."""
    tel = make_telemetry("backoff", **exporter_settings(receiver, protocol))
    receiver.fail_with("unavailable", times=1)
    _one_span(tel)
    receiver.wait_for_spans(1, timeout=WAIT_S)
    assert tel.force_flush(timeout=WAIT_S)
    assert sum(receiver.request_count.values()) == 2
    assert metric_value(tel, "hoptel_export_failures_total") == 0


def test_advised_delay_beyond_the_export_timeout_gives_up_at_once(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry], protocol: str
) -> None:
    """RESOURCE_EXHAUSTED / 429 advising a delay longer than the export timeout is not retried early: one request."""
    tel = make_telemetry("throttled", **exporter_settings(receiver, protocol), exporter_otlp_timeout=2_000)
    receiver.fail_with("resource_exhausted", retry_after_s=60.0)
    _one_span(tel)
    deadline = time.monotonic() + WAIT_S
    while metric_value(tel, "hoptel_export_failures_total") < 1:  # bounded by the deadline
        assert time.monotonic() < deadline, "the refused export was never given up"
        time.sleep(0.01)
    assert sum(receiver.request_count.values()) == 1
    assert metric_value(tel, "hoptel_spans_dropped_total") == 1
    assert receiver.spans() == []


@pytest.mark.parametrize("trouble", ["slow", "unavailable", "resource_exhausted", "down"])
def test_shutdown_returns_within_its_timeout(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry], protocol: str, trouble: str
) -> None:
    """With exports stuck (held, refused with backoff, or collector gone), shutdown(timeout) returns in time."""
    tel = make_telemetry(
        "stuck",
        **exporter_settings(receiver, protocol),
        exporter_otlp_timeout=30_000,
        bsp_export_timeout=30_000,
        bsp_max_export_batch_size=10,
    )
    if trouble == "slow":
        receiver.delay_s = 30.0
    elif trouble == "down":
        receiver.stop()
    else:
        receiver.fail_with(trouble)  # type: ignore[arg-type]  # a FailureStatus, parametrized
    for index in range(100):
        _one_span(tel, f"stuck-{index}")
    if trouble != "down":
        receiver.wait_for_requests(1, timeout=WAIT_S)  # an export is under way and stuck
    started = time.perf_counter()
    tel.shutdown(timeout=SHUTDOWN_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    assert elapsed <= SHUTDOWN_TIMEOUT_S + SHUTDOWN_SLACK_S, elapsed


def test_shutdown_with_otlp_logs_returns_within_its_timeout(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry], protocol: str
) -> None:
    """With spans and OTLP log records both stuck behind a slow collector, one timeout bounds the whole shutdown."""
    timeout = 2.0
    tel = make_telemetry(
        "stuck-logs",
        **exporter_settings(receiver, protocol),
        logs_exporter="otlp",
        exporter_otlp_timeout=30_000,
        bsp_export_timeout=30_000,
    )
    receiver.delay_s = 30.0
    for index in range(100):
        _one_span(tel, f"stuck-{index}")
        logging.getLogger("reliability").warning("stuck log record %d", index)
    receiver.wait_for_requests(1, timeout=WAIT_S)  # an export is under way and held
    started = time.perf_counter()
    tel.shutdown(timeout=timeout)
    elapsed = time.perf_counter() - started
    assert elapsed <= timeout + SHUTDOWN_SLACK_S, elapsed
