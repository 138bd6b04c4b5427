"""Configuration: every bad value fails setup() with a ValueError naming the variable and the value."""

from __future__ import annotations

import pytest

import hoptel
from hoptel.config import DEFAULT_LOG_DIRECTIVES, Config, MetricsAddress

BAD_VALUES = [
    ("OTEL_TRACES_EXPORTER", "zipkin"),
    ("OTEL_LOGS_EXPORTER", "loki"),
    ("OTEL_TRACES_SAMPLER", "sometimes"),
    ("OTEL_TRACES_SAMPLER_ARG", "lots"),
    ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
    ("OTEL_PROPAGATORS", "tracecontext,jaeger"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:21"),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:notaport/v1/traces"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "api-key"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
    ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
    ("OTEL_BSP_SCHEDULE_DELAY", "-5"),
    ("OTEL_BSP_EXPORT_TIMEOUT", "nan"),
    ("OTEL_SDK_DISABLED", "maybe"),
    ("OTEL_RESOURCE_ATTRIBUTES", "team"),
    ("HOPTEL_METRICS_ADDR", "9464"),
    ("HOPTEL_METRICS_ADDR", "127.0.0.1:99999"),
    ("HOPTEL_METRICS_ADDR", "example.com:9464"),
    ("HOPTEL_METRICS_ADDR", "[::1:9464"),
    ("HOPTEL_METRICS_ADDR", "300.1.1.1:9464"),
    ("HOPTEL_LOG_FORMAT", "xml"),
    ("HOPTEL_LOG_QUEUE_SIZE", "-1"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_bad_value_fails_setup_naming_variable_and_value(variable: str, value: str) -> None:
    """setup() raises ValueError naming the variable and repeating the bad value (except header values)."""
    # A ratio sampler, so that OTEL_TRACES_SAMPLER_ARG is read (other samplers ignore it).
    environ = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_EXPORTER": "none"}
    environ["HOPTEL_METRICS_ADDR"] = "off"
    environ[variable] = value
    with pytest.raises(ValueError, match=variable) as raised:
        hoptel.setup("svc", environ=environ)
    if "HEADERS" in variable:  # may hold credentials: named, never repeated
        assert value not in str(raised.value)
    else:
        assert value in str(raised.value)


def test_batch_larger_than_queue_is_rejected() -> None:
    """OTEL_BSP_MAX_EXPORT_BATCH_SIZE above OTEL_BSP_MAX_QUEUE_SIZE names the batch variable."""
    with pytest.raises(ValueError, match="OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
        Config.load({"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "20"})


def test_bad_log_directive_fails_setup() -> None:
    """A malformed HOPTEL_LOG directive fails setup() and names the variable."""
    with pytest.raises(ValueError, match="HOPTEL_LOG"):
        hoptel.setup("svc", environ={"HOPTEL_LOG": "info,grpc=loud"}, traces_exporter="none", metrics_addr="off")


def test_unknown_override_is_a_type_error() -> None:
    """A keyword setup() does not know is a TypeError listing the known settings."""
    with pytest.raises(TypeError, match="traces_exporter"):
        hoptel.setup("svc", environ={}, tracez_exporter="none")


def test_defaults_follow_the_spec() -> None:
    """With no variables: http/protobuf to localhost:4318, parent-based always-on, metrics on 127.0.0.1:9464."""
    config = Config.load({})
    assert config.traces is not None
    assert config.traces.protocol == "http/protobuf"
    assert config.traces.endpoint == "http://localhost:4318/v1/traces"
    assert config.sampler.name == "parentbased_always_on"
    assert config.metrics_addr == MetricsAddress("127.0.0.1", 9464)
    assert config.propagators == "tracecontext,baggage"
    assert config.log_directives == DEFAULT_LOG_DIRECTIVES
    assert config.service_name == "unknown_service"


def test_signal_specific_variables_win() -> None:
    """The _TRACES_ endpoint is used as is, the base endpoint gets /v1/traces; signal headers override."""
    config = Config.load(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs.example:443/custom",
            "OTEL_EXPORTER_OTLP_HEADERS": "a=1,b=two%20words",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "b=3",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500",
        }
    )
    assert config.traces is not None
    assert config.logs is not None
    assert config.traces.endpoint == "http://collector:4318/v1/traces"
    assert config.logs.endpoint == "https://logs.example:443/custom"
    assert dict(config.traces.headers) == {"a": "1", "b": "3"}
    assert dict(config.logs.headers) == {"a": "1", "b": "two words"}
    assert config.traces.timeout_s == 2.5
    assert config.logs.insecure is False


def test_grpc_endpoint_is_not_suffixed() -> None:
    """For OTLP/gRPC the base endpoint is used without a path."""
    config = Config.load({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"})
    assert config.traces is not None
    assert config.traces.endpoint == "http://c:4317"
    assert config.traces.insecure is True


def test_service_name_precedence() -> None:
    """The argument beats OTEL_SERVICE_NAME, which beats service.name in OTEL_RESOURCE_ATTRIBUTES."""
    env = {"OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,team=core"}
    assert Config.load(env, "from-arg").service_name == "from-arg"
    assert Config.load(env).service_name == "from-env"
    assert Config.load({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"}).service_name == "from-attrs"


def test_overrides_win_over_environment() -> None:
    """setup() keywords replace the variables they name; None removes a variable."""
    config = Config.load(
        {"OTEL_TRACES_EXPORTER": "console", "HOPTEL_METRICS_ADDR": "off"},
        overrides={"traces_exporter": "none", "metrics_addr": None, "traces_sampler": "traceidratio"},
    )
    assert config.traces_exporter == "none"
    assert config.metrics_addr == MetricsAddress("127.0.0.1", 9464)
    assert config.sampler.name == "traceidratio"
    assert config.sampler.ratio == 1.0


def test_metrics_addr_forms() -> None:
    """HOPTEL_METRICS_ADDR takes IPv4, [IPv6], localhost, port 0, and off."""
    assert Config.load({"HOPTEL_METRICS_ADDR": "[::1]:0"}).metrics_addr == MetricsAddress("::1", 0)
    assert Config.load({"HOPTEL_METRICS_ADDR": "localhost:9000"}).metrics_addr == MetricsAddress("localhost", 9000)
    assert Config.load({"HOPTEL_METRICS_ADDR": "OFF"}).metrics_addr is None
