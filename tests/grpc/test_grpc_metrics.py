"""The grpc_server_* / grpc_client_* metrics: exact counts under load, Go code names, exemplars, cardinality."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_support import SyncEcho, SyncServe, echo_labels, rpc_pair, sample, sync_client
from prometheus_client.openmetrics.exposition import generate_latest
from support import grpc_echo as echo

import hoptel
from hoptel.interceptors.grpc.names import UNARY
from hoptel.interceptors.grpc.shared import RouteTable
from hoptel.interceptors.recorder import HopRecorder
from hoptel.receiver import OTLPReceiver

THREADS = 8
CALLS_PER_THREAD = 500
EXEMPLAR = r'# \{trace_id="([0-9a-f]{32})"\}'
UNKNOWN = {"grpc_type": "unary", "grpc_service": "unknown", "grpc_method": "unknown"}


def _series(telemetry: hoptel.Telemetry, name: str) -> list[dict[str, str]]:
    """The label sets of every sample called ``name``."""
    return [
        sample.labels for family in telemetry.registry.collect() for sample in family.samples if sample.name == name
    ]


@pytest.mark.slow
def test_counts_exact_after_concurrent_calls(sync_echo: SyncEcho, telemetry: hoptel.Telemetry) -> None:
    """8 threads x 500 unary calls: started, handled, messages and histogram counts are all exactly 4000."""

    def worker(index: int) -> int:
        for i in range(CALLS_PER_THREAD):
            assert sync_echo.unary(f"{index}-{i}".encode()) == f"{index}-{i}".encode()
        return CALLS_PER_THREAD

    with ThreadPoolExecutor(THREADS) as pool:
        assert sum(pool.map(worker, range(THREADS))) == THREADS * CALLS_PER_THREAD
    total = THREADS * CALLS_PER_THREAD
    labels = echo_labels(echo.UNARY, "unary")
    for side in ("server", "client"):
        assert sample(telemetry, f"grpc_{side}_started_total", **labels) == total
        assert sample(telemetry, f"grpc_{side}_handled_total", grpc_code="OK", **labels) == total
        assert sample(telemetry, f"grpc_{side}_msg_sent_total", **labels) == total
        assert sample(telemetry, f"grpc_{side}_msg_received_total", **labels) == total
        assert sample(telemetry, f"grpc_{side}_handling_seconds_count", **labels) == total
        assert sample(telemetry, f"grpc_{side}_handling_seconds_bucket", le="+Inf", **labels) == total
        assert sample(telemetry, f"grpc_{side}_handling_seconds_sum", **labels) > 0


def test_histogram_count_equals_handled_count(sync_echo: SyncEcho, telemetry: hoptel.Telemetry) -> None:
    """Whatever the outcome, each finished RPC is one handled count and one histogram observation."""
    for command in (b"ok", b"abort", b"set_code", b"raise", b"ok"):
        with contextlib.suppress(grpc.RpcError):
            sync_echo.unary(command)
    labels = echo_labels(echo.UNARY, "unary")
    for side in ("server", "client"):
        handled = sum(
            sample(telemetry, f"grpc_{side}_handled_total", **series)
            for series in _series(telemetry, f"grpc_{side}_handled_total")
            if all(series[key] == value for key, value in labels.items())
        )
        assert handled == 5
        assert sample(telemetry, f"grpc_{side}_handling_seconds_count", **labels) == 5


def test_codes_use_go_spelling(sync_echo: SyncEcho, telemetry: hoptel.Telemetry, receiver: OTLPReceiver) -> None:
    """grpc_code labels are spelled as Go's codes.Code String() (go-grpc-middleware dashboards)."""
    for command in (b"ok", b"abort", b"set_code", b"raise"):
        with contextlib.suppress(grpc.RpcError):
            sync_echo.unary(command)
    with pytest.raises(grpc.RpcError):
        sync_echo.unary(b"wait", timeout=0.2)
    responses = sync_echo.server_stream(b"1 wait")
    next(responses)
    responses.cancel()
    with pytest.raises(grpc.RpcError):
        sync_echo.channel.unary_unary("/no.Such/Method")(b"")
    # A server hop ends when its handler notices the client is gone; its span is exported after its metrics.
    receiver.wait_for_spans(7, predicate=lambda span: span.kind == "SERVER")
    client_codes = {series["grpc_code"] for series in _series(telemetry, "grpc_client_handled_total")}
    server_codes = {series["grpc_code"] for series in _series(telemetry, "grpc_server_handled_total")}
    expected = {"OK", "NotFound", "InvalidArgument", "Unknown", "DeadlineExceeded", "Canceled", "Unimplemented"}
    assert expected <= client_codes
    assert expected <= server_codes


def test_exemplar_trace_id_reached_the_receiver(
    sync_echo: SyncEcho, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """A sampled call's histogram bucket carries an exemplar whose trace_id is a trace the receiver got."""
    sync_echo.unary(b"exemplar")
    client, server = rpc_pair(receiver, echo.UNARY)
    exposition = generate_latest(telemetry.registry).decode()
    exemplars = {
        side: re.findall(
            rf'^grpc_{side}_handling_seconds_bucket\{{[^}}]*\}} \S+ # \{{trace_id="([0-9a-f]{{32}})"\}}',
            exposition,
            re.M,
        )
        for side in ("server", "client")
    }
    assert exemplars["server"] == [server.trace_id]
    assert exemplars["client"] == [client.trace_id]
    assert 'le="0.0001"' in exposition  # sub-millisecond resolution


def test_unsampled_calls_counted_without_exemplars(
    make_telemetry: Callable[..., hoptel.Telemetry], serve_sync: SyncServe, receiver: OTLPReceiver
) -> None:
    """With sampling off, calls are still counted and still propagate, but no span or exemplar is produced."""
    telemetry = make_telemetry(traces_sampler="always_off")
    client = sync_client(telemetry, serve_sync(hoptel.server_interceptor(telemetry)))
    try:
        seen = client.unary(b"metadata").decode().splitlines()
    finally:
        client.channel.close()
    (traceparent,) = [line for line in seen if line.startswith("traceparent=")]
    assert int(traceparent.rsplit("-", 1)[1], 16) & 1 == 0  # carried, with the sampled flag off
    labels = echo_labels(echo.UNARY, "unary")
    assert sample(telemetry, "grpc_server_handled_total", grpc_code="OK", **labels) == 1
    assert sample(telemetry, "grpc_client_handled_total", grpc_code="OK", **labels) == 1
    assert "trace_id" not in generate_latest(telemetry.registry).decode()
    assert telemetry.force_flush()
    assert receiver.spans() == []


def test_unknown_methods_share_one_series(
    sync_echo: SyncEcho, serve_sync: SyncServe, telemetry: hoptel.Telemetry
) -> None:
    """A client calling 200 random method names over the wire adds one server series, not 200."""
    plain = grpc.insecure_channel(sync_echo.target)
    try:
        for _ in range(200):
            with pytest.raises(grpc.RpcError) as raised:
                plain.unary_unary(f"/junk.{uuid.uuid4().hex}/M{uuid.uuid4().hex}")(b"")
            assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        plain.close()
    assert _series(telemetry, "grpc_server_started_total") == [UNKNOWN]
    assert sample(telemetry, "grpc_server_started_total", **UNKNOWN) == 200
    assert sample(telemetry, "grpc_server_handled_total", grpc_code="Unimplemented", **UNKNOWN) == 200


def test_ten_thousand_unknown_methods_one_series(make_telemetry: Callable[..., hoptel.Telemetry]) -> None:
    """10,000 random method names through the server interceptor add at most one series per family."""
    telemetry = make_telemetry(traces_sampler="always_off")
    interceptor = hoptel.server_interceptor(telemetry)

    class Details(grpc.HandlerCallDetails):
        def __init__(self, method: str) -> None:
            self.method = method
            self.invocation_metadata = ()

    for i in range(10_000):
        assert interceptor.intercept_service(lambda _: None, Details(f"/junk.S{i}/M{uuid.uuid4().hex}")) is None
    assert _series(telemetry, "grpc_server_started_total") == [UNKNOWN]
    assert _series(telemetry, "grpc_server_handling_seconds_count") == [UNKNOWN]
    assert {series["grpc_code"] for series in _series(telemetry, "grpc_server_handled_total")} <= {
        "OK",
        "Unimplemented",
    }
    assert sample(telemetry, "grpc_server_started_total", **UNKNOWN) == 10_000
    assert sample(telemetry, "grpc_server_handled_total", grpc_code="Unimplemented", **UNKNOWN) == 10_000


def test_client_route_table_is_bounded(telemetry: hoptel.Telemetry) -> None:
    """A client forwarding arbitrary method names stops adding routes (and series) at the table's limit."""
    recorder = HopRecorder.of(telemetry)
    table = RouteTable(recorder, "client", UNARY, None, limit=3)
    routes = [table[f"/svc.S/M{i}"] for i in range(10)]
    assert len(table) == 3
    assert [route.method for route in routes if route is not None][:3] == ["M0", "M1", "M2"]
    assert {route.method for route in routes[3:] if route is not None} == {"unknown"}
    assert table["/svc.S/M0"] is routes[0]
