"""Spans and logs exported by the real OTel SDK exporters arrive intact, over OTLP/gRPC and OTLP/HTTP."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode

from hoptel.receiver import OTLPReceiver, ReceivedEvent, ReceivedSpan

SERVICE = "checkout"  # the service.name the conftest factories put on the resource
TracerProviderFactory = Callable[..., TracerProvider]
LoggerProviderFactory = Callable[..., LoggerProvider]


def _export_checkout_trace(provider: trace.TracerProvider) -> tuple[str, str, str]:
    """Export a SERVER span with a CLIENT child; return (trace id, server span id, client span id) as hex."""
    tracer = provider.get_tracer("tests.receiver", "1.0")
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as server:
        server.set_attributes(
            {
                "http.request.method": "POST",
                "http.response.status_code": 201,
                "ratio": 0.5,
                "cached": False,
                "tags": ["a", "b"],
                "sizes": [1, 2, 3],
            }
        )
        server.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("payments.Pay/Charge", kind=SpanKind.CLIENT) as client:
            client.set_attribute("rpc.grpc.status_code", 14)
            client.add_event("retry", {"attempt": 2})
            client.set_status(Status(StatusCode.ERROR, "payments down"))
    server_ctx, client_ctx = server.get_span_context(), client.get_span_context()
    return (
        trace.format_trace_id(server_ctx.trace_id),
        trace.format_span_id(server_ctx.span_id),
        trace.format_span_id(client_ctx.span_id),
    )


def test_spans_arrive_with_attributes_links_events_and_resource(
    receiver: OTLPReceiver, make_tracer_provider: TracerProviderFactory, protocol: str
) -> None:
    """A two-span trace arrives with ids, parent link, kind, status, typed attributes, events and resource."""
    trace_id, server_id, client_id = _export_checkout_trace(make_tracer_provider(protocol))

    spans = {span.name: span for span in receiver.wait_for_trace(trace_id, 2)}

    server, client = spans["POST /orders"], spans["payments.Pay/Charge"]
    assert (server.trace_id, server.span_id, server.parent_span_id) == (trace_id, server_id, None)
    assert (client.trace_id, client.span_id, client.parent_span_id) == (trace_id, client_id, server_id)
    assert (server.kind, client.kind) == ("SERVER", "CLIENT")
    assert (server.status_code, server.status_message) == ("OK", "")
    assert (client.status_code, client.status_message) == ("ERROR", "payments down")
    assert server.attributes == {
        "http.request.method": "POST",
        "http.response.status_code": 201,
        "ratio": 0.5,
        "cached": False,
        "tags": ["a", "b"],
        "sizes": [1, 2, 3],
    }
    assert client.attributes == {"rpc.grpc.status_code": 14}
    assert [(e.name, e.attributes) for e in client.events] == [("retry", {"attempt": 2})]
    assert isinstance(client.events[0], ReceivedEvent)
    assert client.events[0].time_ns >= client.start_ns
    assert server.start_ns <= client.start_ns <= client.end_ns <= server.end_ns
    assert server.duration_ns == server.end_ns - server.start_ns > 0
    assert server.service_name == SERVICE
    assert server.resource["service.name"] == SERVICE
    assert server.resource["deployment.env"] == "test"
    assert server.scope_name == "tests.receiver"
    assert {server.protocol, client.protocol} == {protocol}


def test_ids_are_lowercase_hex_of_the_right_length(
    receiver: OTLPReceiver, make_tracer_provider: TracerProviderFactory
) -> None:
    """Trace ids are 32 and span ids 16 lowercase hex digits."""
    _export_checkout_trace(make_tracer_provider("grpc"))

    for span in receiver.wait_for_spans(2):
        assert len(span.trace_id) == 32
        assert len(span.span_id) == 16
        assert span.trace_id == span.trace_id.lower()
        int(span.trace_id, 16)
        int(span.span_id, 16)


def test_spans_from_both_protocols_share_one_store(
    receiver: OTLPReceiver, make_tracer_provider: TracerProviderFactory
) -> None:
    """Spans sent over gRPC and HTTP land in one store; traces() groups them and request_count counts each."""
    grpc_trace, _, _ = _export_checkout_trace(make_tracer_provider("grpc"))
    http_trace, _, _ = _export_checkout_trace(make_tracer_provider("http"))

    receiver.wait_for_spans(4)

    traces = receiver.traces()
    assert list(traces) == [grpc_trace, http_trace]
    assert {span.protocol for span in traces[grpc_trace]} == {"grpc"}
    assert {span.protocol for span in traces[http_trace]} == {"http"}
    assert receiver.request_count == {"grpc": 2, "http": 2}  # SimpleSpanProcessor: one request per span


def test_wait_for_spans_predicate_selects_spans(
    receiver: OTLPReceiver, make_tracer_provider: TracerProviderFactory
) -> None:
    """wait_for_spans returns only the spans its predicate accepts."""
    _export_checkout_trace(make_tracer_provider("http"))

    (client,) = receiver.wait_for_spans(1, predicate=lambda span: span.kind == "CLIENT")

    assert isinstance(client, ReceivedSpan)
    assert client.name == "payments.Pay/Charge"


def test_clear_forgets_spans_and_counts(receiver: OTLPReceiver, make_tracer_provider: TracerProviderFactory) -> None:
    """clear() empties spans, logs and request counts; later spans are stored again."""
    provider = make_tracer_provider("grpc")
    _export_checkout_trace(provider)
    receiver.wait_for_spans(2)

    receiver.clear()

    assert receiver.spans() == []
    assert receiver.request_count == {"grpc": 0, "http": 0}
    trace_id, _, _ = _export_checkout_trace(provider)
    assert {span.trace_id for span in receiver.wait_for_spans(2)} == {trace_id}


def test_logs_arrive_with_trace_context(
    receiver: OTLPReceiver,
    make_tracer_provider: TracerProviderFactory,
    make_logger_provider: LoggerProviderFactory,
    protocol: str,
) -> None:
    """A log record emitted inside a span arrives with its body, severity, attributes and the span's ids."""
    logger = make_logger_provider(protocol).get_logger("tests.receiver.logs")
    tracer = make_tracer_provider(protocol).get_tracer("tests.receiver")
    with tracer.start_as_current_span("work") as span:
        logger.emit(
            body="card declined",
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            attributes={"order.id": 42},
        )
    logger.emit(body={"structured": True}, severity_number=SeverityNumber.INFO)

    first, second = receiver.wait_for_logs(2)

    ctx = span.get_span_context()
    assert first.body == "card declined"
    assert (first.severity_text, first.severity_number) == ("WARN", SeverityNumber.WARN.value)
    assert first.trace_id == trace.format_trace_id(ctx.trace_id)
    assert first.span_id == trace.format_span_id(ctx.span_id)
    assert first.attributes == {"order.id": 42}
    assert first.service_name == SERVICE
    assert first.scope_name == "tests.receiver.logs"
    assert first.protocol == protocol
    assert first.time_ns > 0
    assert second.body == "{'structured': True}"
    assert (second.trace_id, second.span_id) == (None, None)
    assert receiver.logs() == [first, second]


def test_wait_for_logs_predicate_selects_records(
    receiver: OTLPReceiver, make_logger_provider: LoggerProviderFactory
) -> None:
    """wait_for_logs returns only the records its predicate accepts."""
    logger = make_logger_provider("grpc").get_logger("tests")
    logger.emit(body="noise", severity_number=SeverityNumber.DEBUG)
    logger.emit(body="boom", severity_number=SeverityNumber.ERROR)

    (record,) = receiver.wait_for_logs(1, predicate=lambda r: r.severity_number >= SeverityNumber.ERROR.value)

    assert record.body == "boom"
