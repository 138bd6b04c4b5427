"""Interop with OpenTelemetry: OTel's own propagators read what hoptel writes and vice versa; SDK spans."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from propagate_support import remote, span_ctx, with_baggage

from hoptel.propagate import Propagator

Recorded = tuple[TracerProvider, InMemorySpanExporter]
PAIRS: list[tuple[str, TextMapPropagator]] = [
    ("tracecontext", TraceContextTextMapPropagator()),
    ("b3", B3SingleFormat()),
    ("b3multi", B3MultiFormat()),
]
IDS = [
    (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331),
    (0x64FE8B2A57D3EFF7, 0x1),  # a 64-bit trace id
    (2**128 - 1, 2**64 - 1),
]


def _same(a: trace.SpanContext, b: trace.SpanContext) -> None:
    assert (a.trace_id, a.span_id, a.is_remote, a.trace_flags, a.is_valid) == (
        b.trace_id,
        b.span_id,
        b.is_remote,
        b.trace_flags,
        b.is_valid,
    )
    assert dict(a.trace_state) == dict(b.trace_state)


@pytest.mark.parametrize(("name", "otel"), PAIRS, ids=[name for name, _ in PAIRS])
@pytest.mark.parametrize(("trace_id", "span_id"), IDS)
@pytest.mark.parametrize("sampled", [True, False])
def test_hoptel_inject_otel_extract(
    name: str, otel: TextMapPropagator, trace_id: int, span_id: int, sampled: bool
) -> None:
    """What hoptel injects, OpenTelemetry's propagator extracts to the same span context."""
    state = TraceState([("vendor", "v1")]) if name == "tracecontext" else None
    source = span_ctx(trace_id, span_id, sampled, state)
    headers: dict[str, str] = {}
    Propagator([name]).inject_headers(headers, source)
    expected = remote(source)
    got = remote(otel.extract(headers))
    assert (got.trace_id, got.span_id, got.trace_flags.sampled) == (trace_id, span_id, sampled)
    assert dict(got.trace_state) == dict(expected.trace_state)


@pytest.mark.parametrize(("name", "otel"), PAIRS, ids=[name for name, _ in PAIRS])
@pytest.mark.parametrize(("trace_id", "span_id"), IDS)
@pytest.mark.parametrize("sampled", [True, False])
def test_otel_inject_hoptel_extract(
    name: str, otel: TextMapPropagator, trace_id: int, span_id: int, sampled: bool
) -> None:
    """What OpenTelemetry's propagator injects, hoptel extracts to the same span context as OTel does."""
    state = TraceState([("vendor", "v1"), ("other", "x y")]) if name == "tracecontext" else None
    headers: dict[str, str] = {}
    otel.inject(headers, span_ctx(trace_id, span_id, sampled, state))
    _same(remote(Propagator([name]).extract_headers(headers)), remote(otel.extract(headers)))


def test_baggage_both_ways() -> None:
    """Baggage round-trips between hoptel and OpenTelemetry's W3CBaggagePropagator in both directions."""
    entries = {"user": "alice", "space": "a b", "plus": "1+1", "pct": "100%", "uni": "ü", "sym": "x=y;z"}
    source = with_baggage(entries)
    ours: dict[str, str] = {}
    Propagator(["baggage"]).inject_headers(ours, source)
    assert dict(baggage.get_all(W3CBaggagePropagator().extract(ours))) == entries
    theirs: dict[str, str] = {}
    W3CBaggagePropagator().inject(theirs, source)
    assert dict(baggage.get_all(Propagator(["baggage"]).extract_headers(theirs))) == entries


def test_sdk_server_span_is_child_of_extracted_parent(tracer_provider: Recorded) -> None:
    """An SDK span started in the extracted context joins the remote trace with the remote span as parent."""
    provider, exporter = tracer_provider
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("client") as client:
        metadata = Propagator().inject_metadata(None)
    ctx = Propagator().extract_metadata(metadata)
    with tracer.start_as_current_span("server", context=ctx, kind=trace.SpanKind.SERVER):
        pass
    finished = {span.name: span for span in exporter.get_finished_spans()}
    server = finished["server"]
    assert server.context.trace_id == client.get_span_context().trace_id
    assert server.parent is not None
    assert server.parent.span_id == client.get_span_context().span_id
    assert server.parent.is_remote


def test_sdk_sampler_honours_unsampled_remote_parent(tracer_provider: Recorded) -> None:
    """The SDK's default ParentBased sampler drops a child of an extracted unsampled parent."""
    provider, exporter = tracer_provider
    headers = {"x-b3-traceid": "1" * 32, "x-b3-spanid": "2" * 16, "x-b3-sampled": "0"}
    ctx = Propagator(["b3multi"]).extract_headers(headers)
    with provider.get_tracer("test").start_as_current_span("server", context=ctx) as span:
        assert not span.is_recording()
    assert exporter.get_finished_spans() == ()


def test_extracted_context_equals_opentelemetry_extraction() -> None:
    """The default propagator's context holds the same span context and baggage as OTel's composite."""
    from opentelemetry.propagators.composite import CompositePropagator

    headers: dict[str, str] = {}
    Propagator().inject_headers(headers, with_baggage({"a": "1"}, span_ctx(state=TraceState([("k", "v")]))))
    theirs = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]).extract(headers)
    ours = Propagator().extract_headers(headers)
    _same(remote(ours), remote(theirs))
    assert dict(baggage.get_all(ours)) == dict(baggage.get_all(theirs))
    assert set(ours) == set(theirs)
    assert isinstance(ours, Context)
