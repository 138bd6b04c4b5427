"""The store's waiting and snapshots, and protobuf-to-value-object conversion, without a network."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import FrozenInstanceError

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import SEVERITY_NUMBER_INFO, LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from hoptel.receiver import ReceivedLog, ReceivedSpan
from hoptel.receiver.convert import any_value, logs_from_request, spans_from_request
from hoptel.receiver.store import TelemetryStore

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _span(span_id: str, name: str = "op", trace_id: str = TRACE) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=None,
        name=name,
        kind="INTERNAL",
        start_ns=0,
        end_ns=1,
        status_code="UNSET",
        status_message="",
        attributes={},
        events=(),
        resource={},
        service_name="svc",
        scope_name="scope",
        protocol="grpc",
    )


def test_waiter_wakes_when_another_thread_adds() -> None:
    """TelemetryStore.wait blocks until a writer thread stores enough spans, then returns them."""
    store = TelemetryStore()
    release = threading.Event()

    def writer() -> None:
        release.wait(10)
        store.add_spans([_span("01" * 8), _span("02" * 8)])

    thread = threading.Thread(target=writer)
    thread.start()
    release.set()
    spans = store.wait(ReceivedSpan, 2, timeout=10)
    thread.join(10)

    assert [span.span_id for span in spans] == ["01" * 8, "02" * 8]


def test_timeout_message_lists_what_arrived() -> None:
    """A wait that times out raises TimeoutError naming the expectation and the spans that did arrive."""
    store = TelemetryStore()
    store.add_spans([_span("01" * 8, "GET /cart")])

    with pytest.raises(TimeoutError) as caught:
        store.wait(ReceivedSpan, 1, timeout=0.01, predicate=lambda span: span.name == "POST /pay")

    message = str(caught.value)
    assert "expected at least 1 matching spans" in message
    assert "0 matched of 1 received" in message
    assert "'GET /cart'" in message
    assert TRACE in message


def test_timeout_message_says_when_nothing_arrived() -> None:
    """A log wait on an empty store says nothing arrived."""
    with pytest.raises(TimeoutError, match="nothing arrived"):
        TelemetryStore().wait(ReceivedLog, 1, timeout=0.01)


def test_wait_for_trace_ignores_other_traces() -> None:
    """wait_for_trace counts only the spans of its trace id (given in any case)."""
    store = TelemetryStore()
    store.add_spans([_span("01" * 8, trace_id="ab" * 16), _span("02" * 8), _span("03" * 8)])

    spans = store.wait_for_trace(TRACE.upper(), 2, timeout=0.01)

    assert [span.span_id for span in spans] == ["02" * 8, "03" * 8]
    with pytest.raises(TimeoutError):
        store.wait_for_trace(TRACE, 3, timeout=0.01)


def test_clear_while_waiting_restarts_the_count() -> None:
    """Spans stored before a clear() do not count towards a wait that was already blocked."""
    store = TelemetryStore()
    store.add_spans([_span("01" * 8)])
    scanned = threading.Event()
    result: list[ReceivedSpan] = []

    def predicate(span: ReceivedSpan) -> bool:
        scanned.set()  # runs under the store's lock, so clear() below waits until the waiter is blocked
        return True

    thread = threading.Thread(target=lambda: result.extend(store.wait(ReceivedSpan, 2, 10, predicate)))
    thread.start()
    assert scanned.wait(10)
    store.clear()
    store.add_spans([_span("02" * 8)])
    store.add_spans([_span("03" * 8)])
    thread.join(10)

    assert [span.span_id for span in result] == ["02" * 8, "03" * 8]


def test_listener_gets_each_batch_and_its_failure_is_contained() -> None:
    """on_spans sees every stored batch; an exception it raises is logged, not propagated."""
    seen: list[int] = []

    def listener(batch: Sequence[ReceivedSpan]) -> None:
        seen.append(len(batch))
        raise RuntimeError("listener bug")

    store = TelemetryStore(on_spans=listener)
    store.add_spans([_span("01" * 8), _span("02" * 8)])

    assert seen == [2]
    assert len(store.spans()) == 2


def test_request_counts_and_wait_for_requests() -> None:
    """Requests are counted per protocol; wait_for_requests without a protocol sums both."""
    store = TelemetryStore()
    store.count_request("grpc")
    store.count_request("http")

    assert store.request_count() == {"grpc": 1, "http": 1}
    assert store.wait_for_requests(2, timeout=0.01) == 2
    with pytest.raises(TimeoutError, match="grpc"):
        store.wait_for_requests(2, "grpc", timeout=0.01)


def test_value_objects_are_frozen_and_hashable() -> None:
    """ReceivedSpan rejects assignment and hashes by its scalar fields (dict fields excluded)."""
    span = _span("01" * 8)

    with pytest.raises(FrozenInstanceError):
        span.name = "other"  # type: ignore[misc]  # the point of the test
    assert hash(span) == hash(_span("01" * 8))
    assert span == _span("01" * 8)


def test_any_value_converts_every_kind() -> None:
    """Every AnyValue kind becomes its Python value; nested arrays and kvlists recurse."""
    nested = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                KeyValue(key="s", value=AnyValue(string_value="x")),
                KeyValue(key="b", value=AnyValue(bool_value=True)),
                KeyValue(key="i", value=AnyValue(int_value=-7)),
                KeyValue(key="d", value=AnyValue(double_value=1.5)),
                KeyValue(key="raw", value=AnyValue(bytes_value=b"\x00\x01")),
                KeyValue(
                    key="a",
                    value=AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="2")])),
                ),
                KeyValue(key="empty", value=AnyValue()),
            ]
        )
    )

    assert any_value(nested) == {
        "s": "x",
        "b": True,
        "i": -7,
        "d": 1.5,
        "raw": b"\x00\x01",
        "a": [1, "2"],
        "empty": None,
    }


def test_span_kind_and_status_mapping() -> None:
    """Unspecified kind reads as INTERNAL; every kind and status code maps to its API name."""
    spans = [
        Span(trace_id=bytes(16), span_id=bytes([i]) * 8, kind=kind, status=Status(code=code))
        for i, (kind, code) in enumerate(
            [
                (Span.SPAN_KIND_UNSPECIFIED, Status.STATUS_CODE_UNSET),
                (Span.SPAN_KIND_PRODUCER, Status.STATUS_CODE_OK),
                (Span.SPAN_KIND_CONSUMER, Status.STATUS_CODE_ERROR),
            ]
        )
    ]
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])

    received = spans_from_request(request, "http")

    assert [(s.kind, s.status_code) for s in received] == [
        ("INTERNAL", "UNSET"),
        ("PRODUCER", "OK"),
        ("CONSUMER", "ERROR"),
    ]
    assert received[0].service_name == ""
    assert received[0].parent_span_id is None


def test_log_without_timestamp_uses_observed_time() -> None:
    """A log record with no time_unix_nano reports its observed time; an empty body is ""."""
    record = LogRecord(observed_time_unix_nano=123, severity_number=SEVERITY_NUMBER_INFO)
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])])

    (received,) = logs_from_request(request, "grpc")

    assert (received.time_ns, received.body, received.severity_number) == (123, "", 9)
    assert (received.trace_id, received.span_id) == (None, None)


def test_public_api_is_pinned() -> None:
    """hoptel.receiver exports exactly the documented names."""
    import hoptel.receiver

    assert sorted(hoptel.receiver.__all__) == [
        "FailureStatus",
        "MetricListener",
        "MetricSeries",
        "OTLPReceiver",
        "Protocol",
        "ReceivedEvent",
        "ReceivedExemplar",
        "ReceivedLog",
        "ReceivedMetric",
        "ReceivedSpan",
        "SpanKind",
        "SpanListener",
        "StatusCode",
        "format_metrics",
        "format_span",
        "format_trace",
        "format_traces",
        "summarize_metrics",
    ]
    for name in hoptel.receiver.__all__:
        assert getattr(hoptel.receiver, name) is not None
