"""Configuration read from ``OTEL_*`` and ``HOPTEL_*`` variables, validated once at ``setup()``.

Every value is parsed here and nowhere else, so a bad value fails early with a ``ValueError`` that names the
variable and the value. ``setup(**overrides)`` takes the same settings as keyword arguments: the key is the
variable's name in lower case without its ``OTEL_``/``HOPTEL_`` prefix (``traces_exporter="none"``,
``metrics_addr="127.0.0.1:0"``); an override wins over the environment.
"""

from __future__ import annotations

import ipaddress
import math
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hoptel import conventions
from hoptel.conventions import ConventionsConfig

__all__ = [
    "DEFAULT_LOG_DIRECTIVES",
    "Config",
    "ExporterConfig",
    "MetricsAddress",
    "SamplerConfig",
    "parse_metrics_addr",
]

DEFAULT_LOG_DIRECTIVES = (
    "info,grpc=warning,httpx=warning,httpcore=warning,urllib3=warning,opentelemetry=warning,asyncio=warning"
)

_PREFIXES = ("OTEL_", "HOPTEL_")

# Every variable setup() reads; the override key is the name without its prefix, lower-cased.
_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_SEMCONV_STABILITY_OPT_IN",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    "HOPTEL_GRPC_BUCKETS",
    "HOPTEL_HTTP_BUCKETS",
    "HOPTEL_METRICS_ADDR",
    "HOPTEL_METRICS_TLS_CERT",
    "HOPTEL_METRICS_TLS_KEY",
    "HOPTEL_METRICS_TLS_CLIENT_CA",
    "HOPTEL_METRICS_DIR",
    "HOPTEL_METRICS_PUBLISH_INTERVAL",
    "HOPTEL_LOG",
    "HOPTEL_LOG_FORMAT",
    "HOPTEL_LOG_QUEUE_SIZE",
    "HOPTEL_SIGNALS",
    *conventions.VARIABLES,  # excluded URLs and services, captured headers and metadata (hoptel.conventions)
)

_SAMPLERS = {
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
}
_TRACES_EXPORTERS = {"otlp", "console", "none"}
_METRICS_EXPORTERS = {"prometheus", "otlp", "none"}
# lowmemory: delta for synchronous counters and histograms, cumulative otherwise; every series hoptel pushes is a
# histogram of a synchronous observation, so it means delta here.
_TEMPORALITIES = {"cumulative", "delta", "lowmemory"}
_PROTOCOLS = {"grpc", "http/protobuf"}
_COMPRESSIONS = {"none", "gzip"}
_N = TypeVar("_N", int, float)
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _override_key(variable: str) -> str:
    for prefix in _PREFIXES:
        if variable.startswith(prefix):
            return variable[len(prefix) :].lower()
    return variable.lower()  # pragma: no cover - every variable has a prefix


_OVERRIDE_KEYS = {_override_key(v): v for v in _VARIABLES}


def _fail(variable: str, value: str, why: str) -> ValueError:
    return ValueError(f"{variable}={value!r}: {why}")


@dataclass(frozen=True, slots=True)
class MetricsAddress:
    """Where the metrics endpoint listens; port 0 means pick a free port."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    """The sampler named by ``OTEL_TRACES_SAMPLER`` and its ratio argument."""

    name: str = "parentbased_always_on"
    ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    """Where one signal (traces or logs) is exported over OTLP."""

    protocol: str
    endpoint: str
    headers: tuple[tuple[str, str], ...]
    timeout_s: float
    compression: str
    insecure: bool


@dataclass(frozen=True, slots=True)
class Config:
    """Everything ``setup()`` needs, parsed and validated."""

    sdk_disabled: bool = False
    service_name: str = "unknown_service"
    resource_attributes: tuple[tuple[str, str], ...] = ()
    traces_exporter: str = "otlp"
    logs_exporter: str = "none"
    traces: ExporterConfig | None = None
    logs: ExporterConfig | None = None
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    propagators: str = "tracecontext,baggage"
    bsp_schedule_delay_s: float = 5.0
    bsp_export_timeout_s: float = 30.0
    bsp_max_queue_size: int = 2048
    bsp_max_export_batch_size: int = 512
    semconv_opt_in: frozenset[str] = frozenset()
    metrics_exporters: tuple[str, ...] = ("prometheus",)  # OTEL_METRICS_EXPORTER; () for none
    metrics: ExporterConfig | None = None  # where OTLP metrics are pushed (when "otlp" is in metrics_exporters)
    metric_export_interval_s: float = 60.0
    metric_export_timeout_s: float = 30.0
    metrics_temporality: str = "cumulative"  # cumulative | delta (lowmemory is read as delta)
    grpc_buckets: tuple[float, ...] | None = None  # HOPTEL_GRPC_BUCKETS; None: hoptel.metrics.LATENCY_BUCKETS
    http_buckets: tuple[float, ...] | None = None  # HOPTEL_HTTP_BUCKETS; likewise
    metrics_addr: MetricsAddress | None = MetricsAddress("127.0.0.1", 9464)
    metrics_tls_cert: str | None = None
    metrics_tls_key: str | None = None
    metrics_tls_client_ca: str | None = None
    metrics_dir: str | None = None  # the worker-state directory; None: automatic; "off": no worker group
    metrics_publish_interval_s: float = 1.0
    log_directives: str = DEFAULT_LOG_DIRECTIVES
    log_format: str = "json"
    log_queue_size: int = 10_000
    signals: bool = True
    conventions: ConventionsConfig = field(default_factory=ConventionsConfig)

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str],
        service_name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        """Build a validated Config from an environment mapping plus ``setup()`` overrides.

        Raises:
            ValueError: a value is malformed; the message names the variable and the value.
            TypeError: an override key that no variable corresponds to.
        """
        values = {name: environ[name] for name in _VARIABLES if name in environ}
        for key, value in (overrides or {}).items():
            variable = _OVERRIDE_KEYS.get(key)
            if variable is None:
                known = ", ".join(sorted(_OVERRIDE_KEYS))
                raise TypeError(f"setup() got an unknown setting {key!r}; known settings: {known}")
            if value is None:
                values.pop(variable, None)
            else:
                values[variable] = _as_text(value)
        return _Parser(values).config(service_name)


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):  # grpc_buckets=[0.001, 0.01], metrics_exporter=("otlp", "prometheus")
        return ",".join(str(item) for item in value)
    return str(value)


def parse_metrics_addr(variable: str, value: str) -> MetricsAddress | None:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6), or ``off`` for no endpoint.

    >>> parse_metrics_addr("HOPTEL_METRICS_ADDR", "127.0.0.1:0")
    MetricsAddress(host='127.0.0.1', port=0)
    >>> parse_metrics_addr("HOPTEL_METRICS_ADDR", "off") is None
    True
    """
    text = value.strip()
    if text.lower() in {"off", "none", "disabled"}:
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise _fail(variable, value, "expected HOST:PORT (e.g. 127.0.0.1:9464) or 'off'")
    port = int(port_text)
    if port > 65535:
        raise _fail(variable, value, "port must be between 0 and 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        _check_ip(variable, value, host, version=6)
    elif not host:
        raise _fail(variable, value, "the host is missing (use 127.0.0.1 for loopback or 0.0.0.0 for all)")
    elif any(c.isalpha() for c in host) and host != "localhost":
        raise _fail(variable, value, "the host must be an IP address or 'localhost'")
    elif host != "localhost":
        _check_ip(variable, value, host, version=4)
    return MetricsAddress(host, port)


def _check_ip(variable: str, value: str, host: str, version: int) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _fail(variable, value, f"{host!r} is not an IP address") from None
    if address.version != version:
        raise _fail(variable, value, f"{host!r} is not an IPv{version} address")


class _Parser:
    """Reads the raw variable values; each method validates one setting."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def _get(self, name: str) -> str | None:
        value = self._values.get(name)
        if value is None:
            return None
        return value.strip()

    def _bool(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise _fail(name, value, "expected true or false")

    def _number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        in_range = f"a finite number >= {minimum:g}"
        return self._parsed(name, default, float, "a number", in_range, lambda n: math.isfinite(n) and n >= minimum)

    def _integer(self, name: str, default: int, *, minimum: int = 1) -> int:
        return self._parsed(name, default, int, "an integer", f"an integer >= {minimum}", lambda n: n >= minimum)

    def _parsed(
        self, name: str, default: _N, parse: Callable[[str], _N], kind: str, in_range: str, ok: Callable[[_N], bool]
    ) -> _N:
        """``parse`` of the variable, or ``default`` when unset or empty.

        Raises:
            ValueError: it does not parse ("expected ``kind``"), or ``ok`` rejects it ("expected ``in_range``").
        """
        value = self._get(name)
        if value is None or value == "":
            return default
        try:
            number = parse(value)
        except ValueError:
            raise _fail(name, value, f"expected {kind}") from None
        if not ok(number):
            raise _fail(name, value, f"expected {in_range}")
        return number

    def _choice(self, name: str, default: str, choices: set[str]) -> str:
        value = self._get(name)
        if value is None or value == "":
            return default
        lowered = value.lower()
        if lowered not in choices:
            raise _fail(name, value, f"expected one of {', '.join(sorted(choices))}")
        return lowered

    def _pairs(self, name: str) -> tuple[tuple[str, str], ...]:
        """Parse the W3C-baggage-like ``key=value,key2=value2`` lists (values percent-decoded)."""
        value = self._get(name)
        if not value:
            return ()
        pairs = []
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, raw = item.partition("=")
            if not sep or not key.strip():
                if "HEADERS" in name:  # header values are credentials: say where, never what
                    position = value.split(",").index(item) + 1
                    raise ValueError(
                        f"{name}: entry {position} is not key=value (expected key=value pairs separated by commas; "
                        "the value is not repeated here because it may hold a credential)"
                    )
                raise _fail(name, value, f"expected key=value pairs separated by commas, got {item.strip()!r}")
            pairs.append((key.strip(), urllib.parse.unquote(raw.strip())))
        return tuple(pairs)

    def _endpoint(self, name: str, value: str) -> str:
        parsed = urllib.parse.urlsplit(value)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise _fail(name, value, "expected an http:// or https:// URL with a host")
        try:
            _ = parsed.port
        except ValueError:
            raise _fail(name, value, "the port is not a number between 0 and 65535") from None
        return value

    def _exporter(self, signal: str) -> ExporterConfig:
        upper = signal.upper()
        protocol_name = f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL"
        protocol = self._choice(
            protocol_name,
            self._choice("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", _PROTOCOLS),
            _PROTOCOLS,
        )
        specific = self._get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT")
        base = self._get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if specific:
            endpoint = self._endpoint(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT", specific)
        elif base:
            endpoint = self._endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", base)
            if protocol == "http/protobuf":
                endpoint = endpoint.rstrip("/") + f"/v1/{signal}"
        else:
            endpoint = "http://localhost:4317" if protocol == "grpc" else f"http://localhost:4318/v1/{signal}"
        headers = self._pairs("OTEL_EXPORTER_OTLP_HEADERS") + self._pairs(f"OTEL_EXPORTER_OTLP_{upper}_HEADERS")
        timeout_ms = self._number(
            f"OTEL_EXPORTER_OTLP_{upper}_TIMEOUT", self._number("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000.0)
        )
        compression = self._choice("OTEL_EXPORTER_OTLP_COMPRESSION", "none", _COMPRESSIONS)
        insecure = self._bool("OTEL_EXPORTER_OTLP_INSECURE", endpoint.startswith("http://"))
        return ExporterConfig(
            protocol=protocol,
            endpoint=endpoint,
            headers=tuple(dict(headers).items()),  # the signal-specific value wins
            timeout_s=timeout_ms / 1000.0,
            compression=compression,
            insecure=insecure,
        )

    def _sampler(self) -> SamplerConfig:
        name = self._choice("OTEL_TRACES_SAMPLER", "parentbased_always_on", _SAMPLERS)
        if not name.endswith("traceidratio"):
            # Only the ratio samplers read the argument (as in the SDK): a left-over value must not fail setup().
            return SamplerConfig(name)
        ratio = self._number("OTEL_TRACES_SAMPLER_ARG", 1.0)
        if ratio > 1.0:
            raise _fail("OTEL_TRACES_SAMPLER_ARG", str(self._get("OTEL_TRACES_SAMPLER_ARG")), "expected 0..1")
        return SamplerConfig(name, ratio)

    def _metrics_exporters(self) -> tuple[str, ...]:
        """``OTEL_METRICS_EXPORTER``: a comma list of prometheus and otlp, or none; () means none."""
        name = "OTEL_METRICS_EXPORTER"
        value = self._get(name)
        if not value:
            return ("prometheus",)
        names = [part.strip().lower() for part in value.split(",")]
        for part in names:
            if part not in _METRICS_EXPORTERS:
                raise _fail(name, value, f"{part!r} is not one of {', '.join(sorted(_METRICS_EXPORTERS))}")
        if "none" in names and len(names) > 1:
            raise _fail(name, value, "'none' cannot be combined with other exporters")
        return tuple(dict.fromkeys(p for p in names if p != "none"))

    def _buckets(self, name: str) -> tuple[float, ...] | None:
        """Histogram bucket upper bounds in seconds: positive, finite, strictly increasing (+Inf is implied)."""
        value = self._get(name)
        if value is None:
            return None
        bounds: list[float] = []
        for item in value.split(","):
            text = item.strip()
            try:
                bound = float(text)
            except ValueError:
                what = "an empty entry" if not text else repr(text)
                raise _fail(name, value, f"{what} is not a number (expected seconds, e.g. 0.001,0.01,0.1)") from None
            if not math.isfinite(bound) or bound <= 0:
                raise _fail(name, value, f"{text} is not a finite number of seconds > 0 (+Inf is always added)")
            if bounds and bound <= bounds[-1]:
                raise _fail(name, value, f"{text} follows {bounds[-1]:g}: bounds must be strictly increasing")
            bounds.append(bound)
        return tuple(bounds)

    def _semconv(self) -> frozenset[str]:
        value = self._get("OTEL_SEMCONV_STABILITY_OPT_IN") or ""
        return frozenset(part.strip().lower() for part in value.split(",") if part.strip())

    def config(self, service_name: str | None) -> Config:
        """Validate every setting and return the Config."""
        attributes = self._pairs("OTEL_RESOURCE_ATTRIBUTES")
        name = service_name or self._get("OTEL_SERVICE_NAME") or dict(attributes).get("service.name")
        traces_exporter = self._choice("OTEL_TRACES_EXPORTER", "otlp", _TRACES_EXPORTERS)
        logs_exporter = self._choice("OTEL_LOGS_EXPORTER", "none", _TRACES_EXPORTERS)
        queue_size = self._integer("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        batch_size = self._integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
        if batch_size > queue_size:
            raise _fail(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                str(batch_size),
                f"must not exceed OTEL_BSP_MAX_QUEUE_SIZE ({queue_size})",
            )
        metrics_value = self._get("HOPTEL_METRICS_ADDR")
        metrics_addr = (
            MetricsAddress("127.0.0.1", 9464)
            if metrics_value is None
            else parse_metrics_addr("HOPTEL_METRICS_ADDR", metrics_value)
        )
        log_format = self._choice("HOPTEL_LOG_FORMAT", "json", {"json", "text"})
        tls_cert = self._get("HOPTEL_METRICS_TLS_CERT") or None
        tls_key = self._get("HOPTEL_METRICS_TLS_KEY") or None
        tls_client_ca = self._get("HOPTEL_METRICS_TLS_CLIENT_CA") or None
        if bool(tls_cert) != bool(tls_key):
            missing = "HOPTEL_METRICS_TLS_KEY" if tls_cert else "HOPTEL_METRICS_TLS_CERT"
            raise _fail(missing, "", "TLS for the metrics endpoint needs both a certificate and its key")
        if tls_client_ca and not tls_cert:
            raise _fail("HOPTEL_METRICS_TLS_CLIENT_CA", tls_client_ca, "mutual TLS also needs HOPTEL_METRICS_TLS_CERT")
        metrics_exporters = self._metrics_exporters()
        if "prometheus" not in metrics_exporters:
            metrics_addr = None  # OTEL_METRICS_EXPORTER without prometheus: no endpoint is served
        metrics = self._exporter("metrics") if "otlp" in metrics_exporters else None
        metric_interval_ms = self._number("OTEL_METRIC_EXPORT_INTERVAL", 60_000.0, minimum=1.0)
        metric_timeout_ms = self._number("OTEL_METRIC_EXPORT_TIMEOUT", 30_000.0, minimum=1.0)
        temporality = self._choice("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "cumulative", _TEMPORALITIES)
        metrics_dir = self._get("HOPTEL_METRICS_DIR") or None
        if metrics_dir is not None and metrics_dir.lower() in {"auto", "off"}:
            metrics_dir = None if metrics_dir.lower() == "auto" else "off"
        publish_ms = self._number("HOPTEL_METRICS_PUBLISH_INTERVAL", 1000.0, minimum=10.0)
        return Config(
            sdk_disabled=self._bool("OTEL_SDK_DISABLED", False),
            service_name=name or "unknown_service",
            resource_attributes=attributes,
            traces_exporter=traces_exporter,
            logs_exporter=logs_exporter,
            traces=self._exporter("traces"),
            logs=self._exporter("logs"),
            sampler=self._sampler(),
            propagators=self._get("OTEL_PROPAGATORS") or "tracecontext,baggage",
            bsp_schedule_delay_s=self._number("OTEL_BSP_SCHEDULE_DELAY", 5000.0) / 1000.0,
            bsp_export_timeout_s=self._number("OTEL_BSP_EXPORT_TIMEOUT", 30000.0) / 1000.0,
            bsp_max_queue_size=queue_size,
            bsp_max_export_batch_size=batch_size,
            semconv_opt_in=self._semconv(),
            metrics_exporters=metrics_exporters,
            metrics=metrics,
            metric_export_interval_s=metric_interval_ms / 1000.0,
            metric_export_timeout_s=metric_timeout_ms / 1000.0,
            metrics_temporality="delta" if temporality == "lowmemory" else temporality,
            grpc_buckets=self._buckets("HOPTEL_GRPC_BUCKETS"),
            http_buckets=self._buckets("HOPTEL_HTTP_BUCKETS"),
            metrics_addr=metrics_addr,
            metrics_tls_cert=tls_cert,
            metrics_tls_key=tls_key,
            metrics_tls_client_ca=tls_client_ca,
            metrics_dir=metrics_dir,
            metrics_publish_interval_s=publish_ms / 1000.0,
            log_directives=self._get("HOPTEL_LOG") or DEFAULT_LOG_DIRECTIVES,
            log_format=log_format,
            log_queue_size=self._integer("HOPTEL_LOG_QUEUE_SIZE", 10_000),
            signals=self._bool("HOPTEL_SIGNALS", True),
            conventions=conventions.parse_conventions(self._values.get),
        )
