"""The histogram keeps a sampled span's context: OpenMetrics shows its trace_id as before, the OTLP push its span id."""

from __future__ import annotations

from opentelemetry.trace import SpanContext, TraceFlags
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from hoptel.config import Config
from hoptel.metrics import ExemplarLabels, Histogram
from hoptel.otlp_metrics import MetricConverter
from hoptel.resource import build_resource

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0x00F067AA0BA902B7


def test_openmetrics_exemplar_keeps_only_the_trace_id() -> None:
    """An observation given a SpanContext is served with {trace_id=...} only, the span id kept beside the labels."""
    registry = CollectorRegistry()
    family = Histogram("grpc_server_handling_seconds", "d", ("grpc_type", "grpc_service", "grpc_method"), registry)
    family.labels("unary", "s.S", "M").observe(0.0003, SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(1)))

    text = generate_latest(registry).decode()
    assert '# {trace_id="0af7651916cd43dd8448eb211c80319c"} 0.0003' in text
    assert "span_id" not in text
    (metric,) = registry.collect()
    (labels,) = [s.exemplar.labels for s in metric.samples if s.exemplar is not None]
    assert isinstance(labels, ExemplarLabels)
    assert (dict(labels), labels.span_id) == ({"trace_id": "0af7651916cd43dd8448eb211c80319c"}, "00f067aa0ba902b7")


def test_converter_reads_both_ids_and_a_bare_trace_id_has_no_span_id() -> None:
    """The converter's exemplars carry trace and span id; an int trace id (no span) gives no span id."""
    registry = CollectorRegistry()
    family = Histogram("http_server_request_duration_seconds", "d", ("http_request_method",), registry)
    family.labels("GET").observe(0.0003, SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(1)))
    family.labels("POST").observe(0.2, TRACE_ID)

    data = MetricConverter(registry).collect(build_resource(Config()))
    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    exemplars = {p.attributes["http.request.method"]: p.exemplars for p in metric.data.data_points}
    ((get,), (post,)) = exemplars["GET"], exemplars["POST"]
    assert (get.trace_id, get.span_id, get.value) == (TRACE_ID, SPAN_ID, 0.0003)
    assert (post.trace_id, post.span_id) == (TRACE_ID, None)
