"""Failure modes for reliability tests (refusals, late answers) and the receiver's lifecycle (stop, restart)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]  # .pyi but no py.typed
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from support.ports import busy_port

from hoptel.receiver import OTLPReceiver, Protocol

PROTOBUF = {"Content-Type": "application/x-protobuf"}
EMPTY = ExportTraceServiceRequest()
CALL_TIMEOUT_S = 5.0


@pytest.fixture
def stub(receiver: OTLPReceiver) -> Iterator[TraceServiceStub]:
    """A raw OTLP/gRPC TraceService stub on the receiver."""
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        yield TraceServiceStub(channel)  # type: ignore[no-untyped-call]  # generated code has no annotations


def _rpc_error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _trailers(error: grpc.RpcError) -> dict[str, bytes]:
    """The binary trailing metadata of a failed call."""
    return {item.key: item.value for item in error.trailing_metadata() if isinstance(item.value, bytes)}


def _tracer(make_tracer_provider: Callable[..., TracerProvider], protocol: str) -> Tracer:
    return make_tracer_provider(protocol).get_tracer("tests.failures")


@pytest.mark.parametrize(
    ("status", "code"),
    [("unavailable", grpc.StatusCode.UNAVAILABLE), ("resource_exhausted", grpc.StatusCode.RESOURCE_EXHAUSTED)],
)
def test_grpc_refusal_carries_code_and_retry_info(
    receiver: OTLPReceiver, stub: TraceServiceStub, status: str, code: grpc.StatusCode
) -> None:
    """fail_with makes gRPC answer its status code with RetryInfo in both trailer forms."""
    receiver.fail_with(status, retry_after_s=2.5)  # type: ignore[arg-type]  # parametrized literal

    error = _rpc_error(lambda: stub.Export(EMPTY, timeout=CALL_TIMEOUT_S))

    assert error.code() == code
    trailers = _trailers(error)
    retry_info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry_info.retry_delay.ToNanoseconds() == 2_500_000_000
    rich = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert rich.code == code.value[0]
    unpacked = error_details_pb2.RetryInfo()
    assert rich.details[0].Unpack(unpacked)
    assert unpacked == retry_info
    assert receiver.request_count["grpc"] == 1


def test_grpc_refusal_without_delay_has_no_retry_info(receiver: OTLPReceiver, stub: TraceServiceStub) -> None:
    """Without retry_after_s the refusal carries no RetryInfo, so the client uses its own backoff."""
    receiver.fail_with("unavailable")

    error = _rpc_error(lambda: stub.Export(EMPTY, timeout=CALL_TIMEOUT_S))

    assert "google.rpc.retryinfo-bin" not in _trailers(error)


@pytest.mark.parametrize(("status", "http_status"), [("unavailable", 503), ("resource_exhausted", 429)])
def test_http_refusal_carries_status_and_retry_after(receiver: OTLPReceiver, status: str, http_status: int) -> None:
    """fail_with makes HTTP answer 503 or 429 with Retry-After in whole seconds, rounded up."""
    receiver.fail_with(status, retry_after_s=1.2)  # type: ignore[arg-type]  # parametrized literal

    response = httpx.post(f"{receiver.http_endpoint}/v1/traces", content=b"", headers=PROTOBUF, timeout=CALL_TIMEOUT_S)

    assert response.status_code == http_status
    assert response.headers["retry-after"] == "2"


def test_refused_spans_are_dropped_and_answering_resumes(receiver: OTLPReceiver, stub: TraceServiceStub) -> None:
    """fail_with(None) ends the refusals; refused requests are counted but store nothing."""
    receiver.fail_with("resource_exhausted")
    _rpc_error(lambda: stub.Export(EMPTY, timeout=CALL_TIMEOUT_S))

    receiver.fail_with(None)
    stub.Export(EMPTY, timeout=CALL_TIMEOUT_S)

    assert receiver.request_count["grpc"] == 2


def test_exporter_retries_through_a_refusal(
    receiver: OTLPReceiver, make_tracer_provider: Callable[..., TracerProvider], protocol: Protocol
) -> None:
    """With times=1 the first export is refused; the SDK exporter honours the retry delay and delivers."""
    receiver.fail_with("unavailable", retry_after_s=0, times=1)

    with _tracer(make_tracer_provider, protocol).start_as_current_span("retried"):
        pass

    (span,) = receiver.wait_for_spans(1)
    assert span.name == "retried"
    assert receiver.request_count[protocol] == 2  # refused once, accepted on the retry


def test_fail_with_rejects_bad_arguments(receiver: OTLPReceiver) -> None:
    """An unknown status, a negative delay or times < 1 is a ValueError."""
    with pytest.raises(ValueError, match="unknown failure status"):
        receiver.fail_with("internal")  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ValueError, match="retry_after_s"):
        receiver.fail_with("unavailable", retry_after_s=-1)
    with pytest.raises(ValueError, match="times"):
        receiver.fail_with("unavailable", times=0)
    with pytest.raises(ValueError, match="delay_s"):
        receiver.delay_s = -0.5


def test_delay_makes_a_short_deadline_expire(receiver: OTLPReceiver, stub: TraceServiceStub) -> None:
    """With delay_s longer than the client's deadline, the gRPC call ends DEADLINE_EXCEEDED."""
    receiver.delay_s = 30.0

    error = _rpc_error(lambda: stub.Export(EMPTY, timeout=0.2))

    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert receiver.delay_s == 30.0


def test_delay_makes_an_http_read_time_out(receiver: OTLPReceiver) -> None:
    """With delay_s longer than the client's read timeout, the HTTP request times out."""
    receiver.delay_s = 30.0

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{receiver.http_endpoint}/v1/traces", content=b"", headers=PROTOBUF, timeout=0.2)


def test_delayed_spans_are_stored_after_the_delay(
    receiver: OTLPReceiver, make_tracer_provider: Callable[..., TracerProvider]
) -> None:
    """A delay shorter than the exporter's timeout only makes the answer late: the span is stored."""
    receiver.delay_s = 0.1

    with _tracer(make_tracer_provider, "grpc").start_as_current_span("late"):
        pass

    assert [span.name for span in receiver.wait_for_spans(1)] == ["late"]


def test_stop_answers_delayed_requests_as_a_vanished_collector() -> None:
    """stop() cuts delays short: the waiting gRPC call gets UNAVAILABLE, the HTTP one a closed connection."""
    outcomes: dict[str, BaseException] = {}
    with OTLPReceiver() as rx:
        rx.delay_s = 60.0
        channel = grpc.insecure_channel(f"127.0.0.1:{rx.grpc_port}")
        stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]  # generated code has no annotations

        def grpc_call() -> None:
            try:
                stub.Export(EMPTY, timeout=30)
            except grpc.RpcError as exc:
                outcomes["grpc"] = exc

        def http_call() -> None:
            try:
                httpx.post(f"{rx.http_endpoint}/v1/traces", content=b"", headers=PROTOBUF, timeout=30)
            except httpx.HTTPError as exc:
                outcomes["http"] = exc

        threads = [threading.Thread(target=grpc_call), threading.Thread(target=http_call)]
        for thread in threads:
            thread.start()
        rx.wait_for_requests(1, "grpc")
        rx.wait_for_requests(1, "http")
    for thread in threads:
        thread.join(10)
    channel.close()

    assert outcomes["grpc"].code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert isinstance(outcomes["http"], httpx.RemoteProtocolError)
    assert rx.spans() == []


def test_restart_keeps_ports_and_data(
    receiver: OTLPReceiver, make_tracer_provider: Callable[..., TracerProvider], protocol: Protocol
) -> None:
    """After stop() nothing listens; start() binds the same ports, and spans before and after are kept."""
    tracer = _tracer(make_tracer_provider, protocol)
    with tracer.start_as_current_span("before"):
        pass
    receiver.wait_for_spans(1)
    ports = (receiver.grpc_port, receiver.http_port)

    receiver.stop()

    assert not receiver.running
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT_S).close()

    receiver.start()

    assert (receiver.grpc_port, receiver.http_port) == ports
    with tracer.start_as_current_span("after"):
        pass
    assert [span.name for span in receiver.wait_for_spans(2)] == ["before", "after"]


def test_start_and_stop_are_idempotent() -> None:
    """A second start() or stop() is a no-op; the endpoints name the bound ports."""
    rx = OTLPReceiver()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = rx.grpc_endpoint
    rx.start()
    try:
        endpoints = (rx.grpc_endpoint, rx.http_endpoint)
        assert rx.start() is rx
        assert (rx.grpc_endpoint, rx.http_endpoint) == endpoints
        assert endpoints == (f"http://127.0.0.1:{rx.grpc_port}", f"http://127.0.0.1:{rx.http_port}")
    finally:
        rx.stop()
    rx.stop()
    assert not rx.running


@pytest.mark.parametrize("which", ["grpc_port", "http_port"])
def test_busy_port_is_an_os_error(which: str) -> None:
    """Binding a port another socket holds raises OSError and leaves nothing running."""
    with busy_port() as port:
        taken: dict[str, Any] = {which: port}
        rx = OTLPReceiver(**taken)

        with pytest.raises(OSError, match=r"\d"):
            rx.start()

        assert not rx.running
