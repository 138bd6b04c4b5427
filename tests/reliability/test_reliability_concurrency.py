"""Exact counts under concurrency: every call is one handled count, one histogram observation and one span.

16 threads make 2,000 sync RPCs each through one instrumented channel to an instrumented sync server, and 500 aio
RPCs run at once against an instrumented aio server. The queue is sized so nothing is dropped; then the server and
client counters, the histogram counts and the spans the collector received must all equal the calls made, with no
span id twice.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import grpc
import pytest
from reliability_support import (
    ECHO_METHOD,
    ECHO_SERVICE,
    GRPC_OPTIONS,
    aio_grpc_server,
    echo_reply,
    metric_value,
    sync_grpc_server,
)

import hoptel
from hoptel.receiver import OTLPReceiver, ReceivedSpan

SYNC_THREADS = 16
CALLS_PER_THREAD = 2_000
AIO_CALLS = 500
WAIT_S = 120.0
LABELS = {"grpc_type": "unary", "grpc_service": ECHO_SERVICE, "grpc_method": "Unary"}


def _assert_exact(tel: hoptel.Telemetry, receiver: OTLPReceiver, calls: int, prefix: str) -> None:
    """Both sides counted ``calls`` OK calls and observed ``calls`` latencies; the collector got 2 spans per call."""
    assert tel.force_flush(timeout=WAIT_S)
    spans = receiver.wait_for_spans(2 * calls, timeout=WAIT_S)
    for side in ("server", "client"):
        assert metric_value(tel, f"grpc_{side}_started_total", LABELS) == calls
        assert metric_value(tel, f"grpc_{side}_handled_total", {**LABELS, "grpc_code": "OK"}) == calls
        assert metric_value(tel, f"grpc_{side}_handling_seconds_count", LABELS) == calls
    assert metric_value(tel, "hoptel_spans_dropped_total") == 0
    assert metric_value(tel, "hoptel_spans_exported_total") == 2 * calls
    assert len(spans) == 2 * calls
    assert len({span.span_id for span in spans}) == 2 * calls
    servers = [span for span in spans if span.kind == "SERVER"]
    clients = {span.span_id: span for span in spans if span.kind == "CLIENT"}
    assert len(servers) == len(clients) == calls
    assert sorted(_tag(span) for span in servers) == sorted(_requests(prefix, calls))
    for server in servers:  # each server span is the child of its own client span, in the same trace
        assert server.parent_span_id is not None
        parent = clients.pop(server.parent_span_id)
        assert parent.trace_id == server.trace_id
    assert not clients


def _tag(span: ReceivedSpan) -> str:
    return str(span.attributes["rel.request"])


def _requests(prefix: str, calls: int) -> list[str]:
    if prefix == "sync":
        return [f"sync-{t}-{i}" for t in range(SYNC_THREADS) for i in range(CALLS_PER_THREAD)]
    return [f"aio-{i}" for i in range(calls)]


@pytest.mark.slow
def test_sync_threads_counts_are_exact(receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry]) -> None:
    """16 threads x 2,000 sync RPCs: handled counts, histogram counts and received spans equal the calls made."""
    calls = SYNC_THREADS * CALLS_PER_THREAD
    tel = make_telemetry("concurrency-sync", bsp_max_queue_size=4 * calls, bsp_max_export_batch_size=2_048)
    errors: list[BaseException] = []
    with (
        sync_grpc_server(hoptel.server_interceptor(tel), workers=SYNC_THREADS) as target,
        grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel,
    ):
        call = grpc.intercept_channel(channel, hoptel.client_interceptor(tel)).unary_unary(ECHO_METHOD, None, None)
        start = threading.Barrier(SYNC_THREADS)

        def work(thread: int) -> None:
            start.wait()
            try:
                for index in range(CALLS_PER_THREAD):
                    request = f"sync-{thread}-{index}".encode()
                    assert call(request, timeout=30) == echo_reply(request)
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        threads = [threading.Thread(target=work, args=(thread,)) for thread in range(SYNC_THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
    assert not errors, errors[:3]
    _assert_exact(tel, receiver, calls, "sync")


async def test_concurrent_aio_counts_are_exact(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry]
) -> None:
    """500 aio RPCs in flight at once: handled counts, histogram counts and received spans equal the calls made."""
    tel = make_telemetry("concurrency-aio", bsp_max_queue_size=4 * AIO_CALLS)
    async with aio_grpc_server(hoptel.aio_server_interceptor(tel)) as target:
        interceptors = hoptel.aio_client_interceptors(tel)
        channel = grpc.aio.insecure_channel(target, options=GRPC_OPTIONS, interceptors=interceptors)
        async with channel:
            call = channel.unary_unary(ECHO_METHOD, None, None)
            requests = [f"aio-{index}".encode() for index in range(AIO_CALLS)]
            replies = await asyncio.gather(*(call(request, timeout=60) for request in requests))
    assert replies == [echo_reply(request) for request in requests]
    _assert_exact(tel, receiver, AIO_CALLS, "aio")
