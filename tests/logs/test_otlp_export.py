"""OTLP log export into a real OTLPReceiver over gRPC and HTTP, correlated with the span that was current."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from hoptel.logs import LogPipeline
from hoptel.logs.otlp import severity
from hoptel.receiver import OTLPReceiver

PipelineFactory = Callable[..., LogPipeline]


def _exporter(receiver: OTLPReceiver, protocol: str) -> LogRecordExporter:
    if protocol == "grpc":
        return GrpcLogExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
    return HttpLogExporter(endpoint=f"{receiver.http_endpoint}/v1/logs", timeout=5)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_exported_records_carry_the_span_ids_and_fields(
    start_pipeline: PipelineFactory, receiver: OTLPReceiver, protocol: str
) -> None:
    """Records logged in a span reach the receiver with its trace_id/span_id, severity, body and attributes."""
    stream = io.StringIO()
    pipeline = start_pipeline(
        stream=stream,
        directives="info",
        otlp_exporter=_exporter(receiver, protocol),
        resource=Resource.create({"service.name": "orders", "deployment.environment": "test"}),
    )
    tracer = TracerProvider().get_tracer("test")
    log = logging.getLogger("orders.api")
    log.info("outside")
    with tracer.start_as_current_span("work") as span:
        log.warning("inside %s", "span", extra={"user": "ada", "sizes": [1, 2], "obj": object})
    assert pipeline.shutdown(timeout=10.0)

    logs = {record.body: record for record in receiver.wait_for_logs(2, timeout=10)}
    inside, outside = logs["inside span"], logs["outside"]
    context = span.get_span_context()
    assert inside.trace_id == format(context.trace_id, "032x")
    assert inside.span_id == format(context.span_id, "016x")
    assert outside.trace_id is None
    assert outside.span_id is None
    assert (inside.severity_text, inside.severity_number) == ("WARN", 13)
    assert inside.scope_name == "orders.api"
    assert inside.service_name == "orders"
    assert inside.resource["deployment.environment"] == "test"
    assert inside.protocol == protocol
    assert inside.attributes["user"] == "ada"
    assert list(inside.attributes["sizes"]) == [1, 2]
    assert inside.attributes["obj"] == repr(object)
    assert inside.attributes["code.function.name"] == "test_exported_records_carry_the_span_ids_and_fields"
    # The same record also went to the stream, with the same ids.
    line = next(json.loads(text) for text in stream.getvalue().splitlines() if "inside span" in text)
    assert (line["trace_id"], line["span_id"]) == (inside.trace_id, inside.span_id)


def test_exception_is_exported_as_exception_attributes(start_pipeline: PipelineFactory, receiver: OTLPReceiver) -> None:
    """log.exception() exports exception.type, exception.message and the stack trace."""
    pipeline = start_pipeline(directives="info", otlp_exporter=_exporter(receiver, "grpc"))
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("orders").exception("failed")
    assert pipeline.shutdown(timeout=10.0)
    (record,) = receiver.wait_for_logs(1, timeout=10)
    assert record.severity_text == "ERROR"
    assert record.attributes["exception.type"] == "ValueError"
    assert record.attributes["exception.message"] == "boom"
    assert "Traceback (most recent call last)" in record.attributes["exception.stacktrace"]


def test_opentelemetry_records_are_written_but_not_exported(
    start_pipeline: PipelineFactory, receiver: OTLPReceiver
) -> None:
    """Warnings from opentelemetry.* loggers (the exporter's own) go to the stream only, so export cannot loop."""
    stream = io.StringIO()
    pipeline = start_pipeline(stream=stream, directives="info", otlp_exporter=_exporter(receiver, "grpc"))
    logging.getLogger("opentelemetry.exporter.otlp").warning("export failed")
    logging.getLogger("orders").warning("app warning")
    assert pipeline.shutdown(timeout=10.0)
    assert [record.body for record in receiver.wait_for_logs(1, timeout=10)] == ["app warning"]
    assert "export failed" in stream.getvalue()


@pytest.mark.parametrize(
    ("levelno", "levelname", "expected"),
    [
        (logging.DEBUG, "DEBUG", (5, "DEBUG")),
        (logging.INFO, "INFO", (9, "INFO")),
        (logging.WARNING, "WARNING", (13, "WARN")),
        (logging.ERROR, "ERROR", (17, "ERROR")),
        (logging.CRITICAL, "CRITICAL", (21, "FATAL")),
        (25, "NOTICE", (12, "NOTICE")),
        (5, "TRACE", (1, "TRACE")),
        (0, "NOTSET", (0, "NOTSET")),
    ],
)
def test_severity_mapping(levelno: int, levelname: str, expected: tuple[int, str]) -> None:
    """Python levels map to OTel severity numbers and texts (WARN, FATAL), custom levels keep their names."""
    number, text = severity(levelno, levelname)
    assert (number.value, text) == expected
