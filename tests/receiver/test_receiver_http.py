"""OTLP/HTTP protocol details, checked with raw httpx requests: content types, paths, methods, encodings."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.trace import TracerProvider

from hoptel.receiver import OTLPReceiver

PROTOBUF = {"Content-Type": "application/x-protobuf"}
TRACE_ID = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")


def _request(name: str = "raw") -> bytes:
    """A serialized one-span ExportTraceServiceRequest."""
    span = Span(
        trace_id=TRACE_ID,
        span_id=bytes.fromhex("00f067aa0ba902b7"),
        name=name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=1_000,
        end_time_unix_nano=3_000,
        attributes=[KeyValue(key="k", value=AnyValue(string_value="v"))],
    )
    resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])
    resource_spans.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="raw")))
    return ExportTraceServiceRequest(resource_spans=[resource_spans]).SerializeToString()


@pytest.fixture
def client(receiver: OTLPReceiver) -> Iterator[httpx.Client]:
    """An httpx client with the receiver's OTLP/HTTP base URL."""
    with httpx.Client(base_url=receiver.http_endpoint, timeout=5.0) as http:
        yield http


def test_protobuf_post_is_stored_and_answered_with_protobuf(receiver: OTLPReceiver, client: httpx.Client) -> None:
    """A binary protobuf POST to /v1/traces gets 200 with an x-protobuf ExportTraceServiceResponse body."""
    response = client.post("/v1/traces", content=_request(), headers=PROTOBUF)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    (span,) = receiver.spans()
    assert (span.name, span.kind, span.service_name, span.duration_ns) == ("raw", "SERVER", "raw", 2_000)
    assert span.attributes == {"k": "v"}


def test_logs_endpoint_answers_logs_response(client: httpx.Client) -> None:
    """An empty logs request to /v1/logs gets 200 with an ExportLogsServiceResponse body."""
    response = client.post("/v1/logs", content=b"", headers=PROTOBUF)

    assert response.status_code == 200
    assert ExportLogsServiceResponse.FromString(response.content) == ExportLogsServiceResponse()


def test_json_is_unsupported_media_type(receiver: OTLPReceiver, client: httpx.Client) -> None:
    """A JSON body gets 415 and stores nothing."""
    response = client.post("/v1/traces", json={"resourceSpans": []})

    assert response.status_code == 415
    assert "application/x-protobuf" in response.text
    assert receiver.spans() == []


def test_content_type_parameters_are_ignored(receiver: OTLPReceiver, client: httpx.Client) -> None:
    """``application/x-protobuf; charset=...`` in any letter case is accepted."""
    response = client.post(
        "/v1/traces", content=_request(), headers={"Content-Type": "Application/X-Protobuf; charset=binary"}
    )

    assert response.status_code == 200
    assert len(receiver.spans()) == 1


@pytest.mark.parametrize("path", ["/", "/v1/profiles", "/v1/traces/extra", "/v2/traces"])
def test_unknown_path_is_not_found(client: httpx.Client, path: str) -> None:
    """A POST to a path other than /v1/traces, /v1/logs or /v1/metrics gets 404."""
    assert client.post(path, content=_request(), headers=PROTOBUF).status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_other_methods_are_not_allowed(client: httpx.Client, method: str) -> None:
    """Another method on an OTLP path gets 405 with ``Allow: POST``."""
    response = client.request(method, "/v1/traces")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_other_method_on_unknown_path_is_not_found(client: httpx.Client) -> None:
    """A GET on an unknown path is 404, not 405."""
    assert client.get("/healthz").status_code == 404


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_compressed_body_is_accepted(
    receiver: OTLPReceiver, client: httpx.Client, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    """A gzip or deflate Content-Encoding body is decompressed and stored."""
    headers = {**PROTOBUF, "Content-Encoding": encoding}

    response = client.post("/v1/traces", content=compress(_request("zipped")), headers=headers)

    assert response.status_code == 200
    assert [span.name for span in receiver.spans()] == ["zipped"]


def test_gzip_from_the_sdk_exporter_is_accepted(
    receiver: OTLPReceiver, make_tracer_provider: Callable[..., TracerProvider]
) -> None:
    """The SDK HTTP exporter configured with gzip compression delivers its spans."""
    tracer = make_tracer_provider("http", gzip=True).get_tracer("tests")
    with tracer.start_as_current_span("compressed"):
        pass

    (span,) = receiver.wait_for_spans(1)

    assert span.name == "compressed"


def test_unknown_content_encoding_is_unsupported(client: httpx.Client) -> None:
    """A body in an encoding the receiver does not know (br) gets 415."""
    response = client.post("/v1/traces", content=b"x", headers={**PROTOBUF, "Content-Encoding": "br"})

    assert response.status_code == 415


def test_corrupt_gzip_is_bad_request(client: httpx.Client) -> None:
    """A body labelled gzip that does not decompress gets 400."""
    response = client.post("/v1/traces", content=b"not gzip", headers={**PROTOBUF, "Content-Encoding": "gzip"})

    assert response.status_code == 400


def test_undecodable_protobuf_is_bad_request(receiver: OTLPReceiver, client: httpx.Client) -> None:
    """A body that is not an export request gets 400, is counted, and stores nothing."""
    response = client.post("/v1/traces", content=b"\xff\xff\xff", headers=PROTOBUF)

    assert response.status_code == 400
    assert "ExportTraceServiceRequest" in response.text
    assert receiver.request_count["http"] == 1
    assert receiver.spans() == []
