"""Hop spans: same sampling decisions as the SDK, faithful OTLP encoding, and the SDK fallback."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags, TraceState

import hoptel
from hoptel.config import SamplerConfig
from hoptel.hop_span import HopSpan, HopTracer, remote_child_starter
from hoptel.otlp_wire import HopSpanEncoder
from hoptel.receiver import OTLPReceiver
from hoptel.telemetry import build_sampler


class CollectingSink:
    """Stands in for the batch processor: keeps what ended."""

    def __init__(self) -> None:
        self.spans: list[object] = []

    def on_end(self, span: object) -> None:
        self.spans.append(span)


def _parent(sampled: bool, remote: bool = True) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span_context = SpanContext(random.getrandbits(128) or 1, random.getrandbits(64) or 1, remote, flags)
    return trace.set_span_in_context(NonRecordingSpan(span_context), Context())


@pytest.mark.parametrize(
    "sampler",
    [
        SamplerConfig("parentbased_always_on"),
        SamplerConfig("parentbased_always_off"),
        SamplerConfig("always_on"),
        SamplerConfig("always_off"),
        SamplerConfig("traceidratio", 0.3),
        SamplerConfig("parentbased_traceidratio", 0.3),
    ],
)
def test_sampling_matches_the_sdk_sampler(sampler: SamplerConfig) -> None:
    """For roots and sampled/unsampled parents, HopTracer decides exactly as the SDK sampler built from config."""
    provider = TracerProvider(sampler=build_sampler(sampler))
    hop_tracer = HopTracer(sampler, CollectingSink(), provider, provider.get_tracer("t"))  # type: ignore[arg-type]
    sdk_sampler = build_sampler(sampler)
    for _ in range(400):
        for context in (Context(), _parent(True), _parent(False)):
            span = hop_tracer.start_span("x", context, SpanKind.SERVER)
            span_context = span.get_span_context()
            expected = sdk_sampler.should_sample(context, span_context.trace_id, "x").decision.is_sampled()
            assert span_context.trace_flags.sampled == expected
            assert isinstance(span, HopSpan) == expected
            parent = trace.get_current_span(context).get_span_context()
            if parent.is_valid:
                assert span_context.trace_id == parent.trace_id


@pytest.mark.parametrize(
    "sampler", [SamplerConfig("parentbased_always_on"), SamplerConfig("parentbased_traceidratio", 0.5)]
)
def test_remote_child_decides_as_start_span_under_that_parent(sampler: SamplerConfig) -> None:
    """start_remote_child(parent) samples, keeps the trace and records the parent as start_span does."""
    provider = TracerProvider(sampler=build_sampler(sampler))
    hop_tracer = HopTracer(sampler, CollectingSink(), provider, provider.get_tracer("t"))  # type: ignore[arg-type]
    sdk_sampler = build_sampler(sampler)
    for _ in range(200):
        for context in (Context(), _parent(True), _parent(False)):
            parent = trace.get_current_span(context).get_span_context()
            span = hop_tracer.start_remote_child("x", parent if parent.is_valid else None, SpanKind.SERVER, None)
            span_context = span.get_span_context()
            expected = sdk_sampler.should_sample(context, span_context.trace_id, "x").decision.is_sampled()
            assert span_context.trace_flags.sampled == expected
            assert not span_context.is_remote
            if parent.is_valid:
                assert span_context.trace_id == parent.trace_id
                if isinstance(span, HopSpan):
                    assert span.parent == parent
            else:
                assert span_context.trace_id != 0


def test_remote_child_starter_works_with_any_tracer() -> None:
    """For an SDK tracer (no start_remote_child), the starter builds the context the extraction would have."""
    provider = TracerProvider()
    parent = trace.get_current_span(_parent(True)).get_span_context()
    start = remote_child_starter(provider.get_tracer("t"))
    span = start("x", parent, SpanKind.SERVER, {"k": "v"})
    assert isinstance(span, ReadableSpan)
    assert span.parent == parent
    assert span.get_span_context().trace_id == parent.trace_id
    root = start("y", None, SpanKind.SERVER, None)
    assert isinstance(root, ReadableSpan)
    assert root.parent is None


def test_encoding_carries_every_field() -> None:
    """A hop span with parent, trace state, events, links and an error status decodes to the same values."""
    sink = CollectingSink()
    sampler = SamplerConfig("parentbased_always_on")
    provider = TracerProvider()
    tracer = HopTracer(sampler, sink, provider, provider.get_tracer("t"))  # type: ignore[arg-type]
    parent_context = SpanContext(0xABC, 0xDEF, True, TraceFlags(1), TraceState([("vendor", "v1")]))
    context = trace.set_span_in_context(NonRecordingSpan(parent_context), Context())
    span = tracer.start_span("pkg.Svc/Get", context, SpanKind.CLIENT, {"rpc.system": "grpc"})
    assert isinstance(span, HopSpan)
    span.set_attributes({"n": 3, "ratio": 0.5, "ok": True, "tags": ["a", "b"]})
    span.add_link(SpanContext(0x1, 0x2, False, TraceFlags(1)), {"why": "batch"})
    span.record_exception(ValueError("boom"))
    span.set_status(StatusCode.ERROR, "NOT_FOUND: no such item")
    span.end()
    request = ExportTraceServiceRequest.FromString(
        HopSpanEncoder(Resource({"service.name": "orders"})).encode(sink.spans)
    )
    (resource_spans,) = request.resource_spans
    assert {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes} == {"service.name": "orders"}
    (encoded,) = resource_spans.scope_spans[0].spans
    assert encoded.name == "pkg.Svc/Get"
    assert encoded.kind == 3  # SPAN_KIND_CLIENT
    assert int.from_bytes(encoded.trace_id, "big") == 0xABC
    assert int.from_bytes(encoded.parent_span_id, "big") == 0xDEF
    assert int.from_bytes(encoded.span_id, "big") == span.get_span_context().span_id
    assert encoded.trace_state == "vendor=v1"
    attributes = {kv.key: kv.value for kv in encoded.attributes}
    assert attributes["rpc.system"].string_value == "grpc"
    assert attributes["n"].int_value == 3
    assert attributes["ratio"].double_value == 0.5
    assert attributes["ok"].bool_value is True
    assert [v.string_value for v in attributes["tags"].array_value.values] == ["a", "b"]
    (event,) = encoded.events
    assert event.name == "exception"
    event_attributes = {kv.key: kv.value.string_value for kv in event.attributes}
    assert event_attributes["exception.type"] == "ValueError"
    assert event_attributes["exception.message"] == "boom"
    assert encoded.status.code == 2
    assert encoded.status.message == "NOT_FOUND: no such item"
    assert int.from_bytes(encoded.links[0].span_id, "big") == 0x2
    assert encoded.end_time_unix_nano >= encoded.start_time_unix_nano > 0
    assert encoded.flags & 0x300 == 0x300  # parent is remote


def test_encoding_of_route_spans_decodes_to_each_spans_values() -> None:
    """Spans of one route (name, kind and route attributes encoded once, then reused) decode to their own values.

    Covers a local and a remote parent, a root, a span that overrides a route attribute, and a span big enough
    that its length needs a two-byte varint.
    """
    sink = CollectingSink()
    provider = TracerProvider()
    tracer = HopTracer(SamplerConfig("parentbased_always_on"), sink, provider, provider.get_tracer("t"))  # type: ignore[arg-type]
    route_attributes = {"rpc.system": "grpc", "rpc.service": "pkg.Svc", "rpc.method": "Get"}
    remote = trace.set_span_in_context(NonRecordingSpan(SpanContext(0xA1, 0xB2, True, TraceFlags(1))), Context())
    local = trace.set_span_in_context(NonRecordingSpan(SpanContext(0xA1, 0xB3, False, TraceFlags(1))), Context())
    for context, extra in (
        (remote, {"rpc.grpc.status_code": 0}),
        (local, {"server.address": "orders", "server.port": 50051}),
        (Context(), {}),
        (remote, {"rpc.method": "Overridden", "rpc.grpc.status_code": 5}),
        (local, {"big": "x" * 300}),
    ):
        span = tracer.start_span("pkg.Svc/Get", context, SpanKind.SERVER, route_attributes)
        span.set_attributes(extra)
        span.end()
    resource = Resource({"service.name": "orders"})
    ours = ExportTraceServiceRequest.FromString(HopSpanEncoder(resource).encode(sink.spans))
    decoded = ours.resource_spans[0].scope_spans[0].spans
    assert len(decoded) == 5
    for hop, message in zip(sink.spans, decoded, strict=True):
        attributes = {kv.key: kv.value for kv in message.attributes}
        assert len(attributes) == len(message.attributes)  # no attribute encoded twice
        assert {key: getattr(value, value.WhichOneof("value")) for key, value in attributes.items()} == dict(
            hop.attributes
        )
        parent = hop.parent
        assert message.parent_span_id == (parent.span_id.to_bytes(8, "big") if parent else b"")
        expected_flags = 0x101 | (0x200 if parent is not None and parent.is_remote else 0)
        assert message.flags == expected_flags
        assert (message.name, message.kind) == ("pkg.Svc/Get", 2)  # SPAN_KIND_SERVER
        assert (message.start_time_unix_nano, message.end_time_unix_nano) == (hop.start_time, hop.end_time)


class Seen(SpanProcessor):
    """A processor the application adds; records span names it sees end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.names.append(span.name)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_hop_and_sdk_spans_share_one_export(receiver: OTLPReceiver, protocol: str) -> None:
    """A hop span and an SDK child of it reach the receiver in one pipeline with the right parent link."""
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    with hoptel.setup(
        "mixed", environ={}, exporter_otlp_protocol=protocol, exporter_otlp_endpoint=endpoint, metrics_addr="off"
    ) as tel:
        hop = tel.hop_tracer.start_span("hop", Context(), SpanKind.SERVER, {"a": "b"})
        assert isinstance(hop, HopSpan)
        with trace.use_span(hop, end_on_exit=True):
            tel.tracer_provider.get_tracer("app").start_span("child").end()
    spans = {s.name: s for s in receiver.wait_for_spans(2)}
    assert spans["child"].parent_span_id == spans["hop"].span_id
    assert spans["child"].trace_id == spans["hop"].trace_id
    assert spans["hop"].attributes == {"a": "b"}
    assert spans["hop"].service_name == spans["child"].service_name == "mixed"


def test_added_processor_switches_hops_to_the_sdk(receiver: OTLPReceiver) -> None:
    """When the application adds a span processor, hops become SDK spans so that processor sees them."""
    with hoptel.setup(
        "fallback",
        environ={},
        exporter_otlp_protocol="grpc",
        exporter_otlp_endpoint=receiver.grpc_endpoint,
        metrics_addr="off",
    ) as tel:
        assert isinstance(tel.hop_tracer.start_span("before", Context()), HopSpan)
        seen = Seen()
        assert isinstance(tel.tracer_provider, TracerProvider)
        tel.tracer_provider.add_span_processor(seen)
        span = tel.hop_tracer.start_span("after", Context())
        assert not isinstance(span, HopSpan)
        span.end()
        parent = trace.get_current_span(_parent(True)).get_span_context()
        child = tel.hop_tracer.start_remote_child("remote child", parent, SpanKind.SERVER, None)
        assert not isinstance(child, HopSpan)
        assert isinstance(child, ReadableSpan)
        assert child.parent == parent
        child.end()
    assert seen.names == ["after", "remote child"]
    names: Sequence[str] = [s.name for s in receiver.wait_for_spans(1)]
    assert "after" in names
