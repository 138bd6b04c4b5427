"""Configuration of the metrics exporters, the OTLP metrics push and the histogram buckets."""

from __future__ import annotations

import pytest

import hoptel
from hoptel.config import Config, MetricsAddress


def _load(**environ: str) -> Config:
    return Config.load(environ)


def test_defaults() -> None:
    """By default: Prometheus only, 60 s interval, 30 s timeout, cumulative, hoptel's latency buckets."""
    config = _load()
    assert config.metrics_exporters == ("prometheus",)
    assert config.metrics is None
    assert (config.metric_export_interval_s, config.metric_export_timeout_s) == (60.0, 30.0)
    assert config.metrics_temporality == "cumulative"
    assert (config.grpc_buckets, config.http_buckets) == (None, None)
    assert config.metrics_addr == MetricsAddress("127.0.0.1", 9464)


def test_otlp_with_prometheus_and_the_metrics_variables() -> None:
    """otlp,prometheus keeps the endpoint; the OTEL_EXPORTER_OTLP_METRICS_* variables win over the generic ones."""
    config = _load(
        OTEL_METRICS_EXPORTER=" OTLP , prometheus",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="http://metrics:9000/v1/metrics",
        OTEL_EXPORTER_OTLP_HEADERS="a=1,b=2",
        OTEL_EXPORTER_OTLP_METRICS_HEADERS="b=3",
        OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="2500",
        OTEL_METRIC_EXPORT_INTERVAL="15000",
        OTEL_METRIC_EXPORT_TIMEOUT="5000",
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="Delta",
    )
    assert config.metrics_exporters == ("otlp", "prometheus")
    assert config.metrics_addr is not None
    assert config.metrics is not None
    assert config.metrics.endpoint == "http://metrics:9000/v1/metrics"
    assert config.metrics.protocol == "http/protobuf"
    assert dict(config.metrics.headers) == {"a": "1", "b": "3"}
    assert config.metrics.timeout_s == 2.5
    assert (config.metric_export_interval_s, config.metric_export_timeout_s) == (15.0, 5.0)
    assert config.metrics_temporality == "delta"


def test_generic_endpoint_gets_the_metrics_path_and_grpc_protocol() -> None:
    """The generic endpoint gets /v1/metrics over HTTP; OTEL_EXPORTER_OTLP_METRICS_PROTOCOL picks gRPC."""
    http = _load(OTEL_METRICS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318/")
    assert http.metrics is not None
    assert http.metrics.endpoint == "http://collector:4318/v1/metrics"
    grpc = _load(
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="grpc",
    )
    assert grpc.metrics is not None
    assert (grpc.metrics.protocol, grpc.metrics.endpoint) == ("grpc", "http://collector:4317")


def test_otlp_alone_and_none_turn_the_endpoint_off() -> None:
    """Without prometheus in the list no endpoint is served; none means no exporter at all."""
    assert _load(OTEL_METRICS_EXPORTER="otlp").metrics_addr is None
    none = _load(OTEL_METRICS_EXPORTER="none", HOPTEL_METRICS_ADDR="127.0.0.1:9999")
    assert (none.metrics_exporters, none.metrics, none.metrics_addr) == ((), None, None)


def test_lowmemory_is_delta() -> None:
    """The lowmemory preference (delta for synchronous histograms) is accepted and read as delta."""
    assert _load(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="lowmemory").metrics_temporality == "delta"


def test_buckets_are_parsed_in_seconds() -> None:
    """HOPTEL_GRPC_BUCKETS and HOPTEL_HTTP_BUCKETS are comma lists of seconds; a keyword may be a list."""
    config = _load(HOPTEL_GRPC_BUCKETS="0.0005, 0.001,0.01", HOPTEL_HTTP_BUCKETS="1e-3,2")
    assert config.grpc_buckets == (0.0005, 0.001, 0.01)
    assert config.http_buckets == (0.001, 2.0)
    assert Config.load({}, overrides={"grpc_buckets": [0.01, 0.1]}).grpc_buckets == (0.01, 0.1)


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("OTEL_METRICS_EXPORTER", "otlp,statsd", "'statsd' is not one of"),
        ("OTEL_METRICS_EXPORTER", "console", "'console' is not one of"),
        ("OTEL_METRICS_EXPORTER", "none,otlp", "cannot be combined"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes", "expected one of cumulative, delta"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "soon", "expected a number"),
        ("OTEL_METRIC_EXPORT_TIMEOUT", "-1", "expected a finite number"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "thrift", "expected one of"),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4318", "expected an http:// or https:// URL"),
        ("HOPTEL_GRPC_BUCKETS", "0.1,0.01", "strictly increasing"),
        ("HOPTEL_GRPC_BUCKETS", "0.01,0.01", "strictly increasing"),
        ("HOPTEL_GRPC_BUCKETS", "-0.1,0.1", "> 0"),
        ("HOPTEL_GRPC_BUCKETS", "0,0.1", "> 0"),
        ("HOPTEL_HTTP_BUCKETS", "fast,slow", "'fast' is not a number"),
        ("HOPTEL_HTTP_BUCKETS", "", "an empty entry is not a number"),
        ("HOPTEL_HTTP_BUCKETS", "0.1,,0.2", "an empty entry is not a number"),
        ("HOPTEL_HTTP_BUCKETS", "0.1,inf", "finite"),
        ("HOPTEL_HTTP_BUCKETS", "nan", "finite"),
    ],
)
def test_bad_values_fail_setup_naming_the_variable(variable: str, value: str, why: str) -> None:
    """A bad metrics or bucket setting is a ValueError at setup() naming the variable and its value."""
    environ = {variable: value}
    if "OTLP_METRICS" in variable:
        environ["OTEL_METRICS_EXPORTER"] = "otlp"
    with pytest.raises(ValueError, match=rf"^{variable}=.*{why}") as raised:
        hoptel.setup("bad", environ=environ, install_global=False, metrics_addr="off")
    assert repr(value) in str(raised.value)


def test_the_metrics_variables_are_validated_even_without_otlp() -> None:
    """A bad temporality or interval fails even when OTLP metrics are not enabled (a mistake either way)."""
    with pytest.raises(ValueError, match="OTEL_METRIC_EXPORT_INTERVAL"):
        _load(OTEL_METRIC_EXPORT_INTERVAL="0")
