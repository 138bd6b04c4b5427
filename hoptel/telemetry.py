"""``setup()`` and ``Telemetry``: one process's tracer provider, registry, metrics endpoint and log pipeline."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from prometheus_client.registry import CollectorRegistry

from hoptel.background import Once
from hoptel.batch import BatchSpanProcessor, PipelineCounters
from hoptel.config import Config, SamplerConfig
from hoptel.exporters import build_log_exporter, build_span_exporter
from hoptel.hop_span import HopTracer
from hoptel.logs import GrpcVerbosity, LogPipeline, quiet_grpc_core
from hoptel.logs.grpc_verbosity import undo_grpc_verbosity
from hoptel.otel_internals import allow_tracer_provider_reset
from hoptel.resource import build_resource
from hoptel.self_metrics import SelfMetrics
from hoptel.shutdown_signals import flush_on_signals, forget

if TYPE_CHECKING:
    from hoptel.endpoint import MetricsEndpoint
    from hoptel.export_outage import OutageTracker
    from hoptel.metric_export import MetricPush
    from hoptel.propagate import Propagator
    from hoptel.worker_group import WorkerGroup

__all__ = ["LOG_DRAIN_FLOOR_S", "Telemetry", "current", "setup"]

LOG_DRAIN_FLOOR_S = 0.25
"""What ``Telemetry.shutdown()`` leaves the log pipeline at least, even when span export used up the timeout."""

_lock = threading.Lock()
_latest: Telemetry | None = None
_fallback: Telemetry | None = None
# Providers hoptel installed as the OTel global; only those may be replaced by a later setup().
_installed_providers: list[trace.TracerProvider] = []


def build_sampler(settings: SamplerConfig) -> Sampler:
    """The SDK sampler for ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``."""
    base, _, root_name = settings.name.partition("parentbased_")
    root = root_name or base
    chosen: Sampler
    if root == "always_on":
        chosen = ALWAYS_ON
    elif root == "always_off":
        chosen = ALWAYS_OFF
    else:
        chosen = TraceIdRatioBased(settings.ratio)
    return ParentBased(chosen) if root_name else chosen


class Telemetry:
    """What ``setup()`` built: use it to reach the providers, and ``shutdown()`` it (or use it as a guard).

    Attributes:
        config: the validated configuration.
        tracer_provider: the SDK TracerProvider (a no-op provider when OTEL_SDK_DISABLED=true).
        registry: an isolated prometheus_client CollectorRegistry holding hoptel's metrics.
        metrics_url: ``http://127.0.0.1:PORT/metrics``, or None when the endpoint is off.
        propagator: carries context across hops (from OTEL_PROPAGATORS).
        self_metrics: hoptel's own pipeline health counters.
    """

    def __init__(
        self,
        config: Config,
        tracer_provider: trace.TracerProvider,
        registry: CollectorRegistry,
        propagator: Propagator,
        *,
        processor: BatchSpanProcessor | None = None,
        self_metrics: SelfMetrics | None = None,
    ) -> None:
        self.config = config
        self.tracer_provider = tracer_provider
        self.registry = registry
        self.propagator = propagator
        self.tracer = tracer_provider.get_tracer("hoptel")
        # What the per-hop recorder starts spans with: the SDK tracer, or hoptel's lean HopTracer (hop_span.py)
        # when the exporter encodes hop spans and hoptel's processor is the provider's only one.
        self.hop_tracer: trace.Tracer | HopTracer = self.tracer
        self._processor = processor
        self.self_metrics = self_metrics or SelfMetrics(registry, self._queue_length)
        self.metrics_url: str | None = None
        self._endpoint: MetricsEndpoint | WorkerGroup | None = None
        self._logs: LogPipeline | None = None
        self._metric_push: MetricPush | None = None  # OTEL_METRICS_EXPORTER=otlp: see hoptel.metric_export
        self._outages: list[OutageTracker] = []  # one per OTLP exporter: see hoptel.export_outage
        self._closing = Once()

    @property
    def enabled(self) -> bool:
        """False when OTEL_SDK_DISABLED=true: hops are then passed through untouched."""
        return not self.config.sdk_disabled

    def _queue_length(self) -> int:
        return self._processor.queue_length if self._processor is not None else 0

    def set_log_filter(self, directives: str) -> None:
        """Change the log directives at run time, e.g. ``"debug,grpc=info"``.

        Raises:
            ValueError: a malformed directive (the message names the bad part).
            RuntimeError: logging was not set up by this Telemetry.
        """
        if self._logs is None:
            raise RuntimeError("this Telemetry does not manage logging (OTEL_SDK_DISABLED or already shut down)")
        self._logs.set_filter(directives)

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export every span finished so far; True if that completed within ``timeout`` seconds."""
        if self._processor is None:
            return True
        return self._processor.force_flush(int(timeout * 1000))

    def flush(self, timeout: float = 5.0) -> bool:
        """Export the spans finished so far, push the metrics (OTLP push only), then write the queued log records.

        What a server's shutdown path runs when the process may end without ``atexit`` (see
        ``hoptel.shutdown_signals``); unlike ``shutdown()`` everything keeps working afterwards.

        Returns:
            True if all completed within ``timeout`` seconds, the metric push accepted by the collector (the logs
            get at least ``LOG_DRAIN_FLOOR_S``).
        """
        deadline = time.monotonic() + timeout
        spans = self.force_flush(timeout)
        publish = getattr(self._endpoint, "publish", None)  # a worker group: its state outlives this process
        if publish is not None:
            publish()
        if self._metric_push is not None:  # OTLP metrics: one push now, bounded like the rest
            spans = self._metric_push.flush(max(deadline - time.monotonic(), 0.0)) and spans
        logs = self._logs
        if logs is None:
            return spans
        return logs.flush(max(deadline - time.monotonic(), LOG_DRAIN_FLOOR_S)) and spans

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush spans and logs, stop the metrics endpoint and release the providers; idempotent.

        ``timeout`` bounds the whole call: spans are exported first, and the log pipeline gets the time that is
        left, but at least ``LOG_DRAIN_FLOOR_S`` to write its last lines. Spans still queued when the time is up
        are counted in ``hoptel_spans_dropped_total``.
        """
        if not self._closing.claim():
            return
        deadline = time.monotonic() + timeout
        atexit.unregister(self.shutdown)
        forget(self)  # the last open Telemetry gives SIGTERM/SIGINT their default disposition back
        if self._processor is not None:
            self._processor.shutdown(timeout)
        if isinstance(self.tracer_provider, TracerProvider):
            self.tracer_provider.shutdown()
        if self._metric_push is not None:  # a last OTLP metrics push, bounded by what is left of the timeout
            self._metric_push.shutdown(max(deadline - time.monotonic(), 0.0))
            self._metric_push = None
        for outage in self._outages:  # an export still failing gets its closing line while logs are written
            outage.close()
        if self._logs is not None:
            self._logs.shutdown(max(deadline - time.monotonic(), LOG_DRAIN_FLOOR_S))
            self._logs = None
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None
        global _latest
        with _lock:
            if _latest is self:
                _latest = None

    @property
    def closed(self) -> bool:
        """True once ``shutdown()`` ran."""
        return self._closing.done

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        state = "closed" if self._closing.done else "open"
        return f"<hoptel.Telemetry service={self.config.service_name!r} metrics_url={self.metrics_url!r} {state}>"


def setup(
    service_name: str | None = None,
    *,
    span_exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
    install_global: bool = True,
    keep_log_handlers: bool = False,
    **overrides: Any,
) -> Telemetry:
    """Configure tracing, metrics and logs for this process from ``OTEL_*`` / ``HOPTEL_*`` and the arguments.

    Args:
        service_name: ``service.name``; else OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES' service.name.
        span_exporter: export spans here instead of the exporter OTEL_TRACES_EXPORTER names (tests, custom sinks).
        environ: read these variables instead of ``os.environ``.
        install_global: also make the tracer provider the OTel global one.
        keep_log_handlers: keep the root logger's console handlers and those of uvicorn's and gunicorn's loggers
            (by default hoptel's JSON handler replaces them for the Telemetry's lifetime, so nothing prints twice
            and the servers' lines are JSON too).
        **overrides: any setting by variable name without prefix, lower case: ``traces_exporter="none"``,
            ``metrics_addr="127.0.0.1:0"``, ``exporter_otlp_endpoint=...``, ``log="debug"``, ``signals=False``
            (``HOPTEL_SIGNALS``: no flush on a default-disposition SIGTERM/SIGINT, see ``hoptel.shutdown_signals``).

    Returns:
        The Telemetry; later factories without ``telemetry=`` use it.

    Raises:
        ValueError: a bad configuration value; the message names the variable and the value.
    """
    config = Config.load(os.environ if environ is None else environ, service_name, overrides)
    # First, before anything imports grpc: gRPC core reads GRPC_VERBOSITY once, at import.
    grpc_verbosity = quiet_grpc_core()
    if config.sdk_disabled:
        undo_grpc_verbosity(grpc_verbosity)
        telemetry = _disabled(config)
    else:
        telemetry = _build(config, span_exporter, grpc_verbosity, keep_log_handlers)
    if install_global and telemetry.enabled:
        _install_global_provider(telemetry.tracer_provider)
    global _latest
    with _lock:
        _latest = telemetry
    atexit.register(telemetry.shutdown)
    if telemetry.enabled and config.signals:
        flush_on_signals(telemetry)  # a default SIGTERM/SIGINT disposition gets a bounded flush first
    return telemetry


def _build(
    config: Config, span_exporter: SpanExporter | None, grpc_verbosity: GrpcVerbosity, keep_log_handlers: bool
) -> Telemetry:
    from hoptel.propagate import propagator_from_env

    propagator = propagator_from_env(config.propagators)
    exporter = span_exporter or build_span_exporter(config.traces_exporter, config.traces, config.bsp_export_timeout_s)
    log_exporter = build_log_exporter(config.logs_exporter, config.logs)
    resource = build_resource(config)
    provider = TracerProvider(resource=resource, sampler=build_sampler(config.sampler), shutdown_on_exit=False)
    registry = CollectorRegistry(auto_describe=True)
    holder: list[BatchSpanProcessor] = []
    self_metrics = SelfMetrics(registry, lambda: holder[0].queue_length if holder else 0)
    processor = None
    if exporter is not None:
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=config.bsp_max_queue_size,
            max_export_batch_size=config.bsp_max_export_batch_size,
            schedule_delay_s=config.bsp_schedule_delay_s,
            counters=PipelineCounters(
                dropped=self_metrics.spans_dropped.inc,
                export_failed=self_metrics.export_failures.inc,
                exported=self_metrics.spans_exported.inc,
            ),
        )
        holder.append(processor)
        provider.add_span_processor(processor)
    telemetry = Telemetry(config, provider, registry, propagator, processor=processor, self_metrics=self_metrics)
    if processor is not None or log_exporter is not None:  # one WARNING when an export starts failing, one INFO after
        from hoptel.export_attempts import track_outages

        traces_endpoint = config.traces.endpoint if config.traces is not None else None
        logs_endpoint = config.logs.endpoint if config.logs is not None else None
        telemetry._outages = track_outages(exporter, log_exporter, self_metrics, traces_endpoint, logs_endpoint)
    if processor is not None and getattr(exporter, "accepts_hop_spans", False):
        exporter.set_resource(resource)  # type: ignore[union-attr]  # a hoptel.hop_exporters exporter
        telemetry.hop_tracer = HopTracer(config.sampler, processor, provider, telemetry.tracer)
    try:
        telemetry._logs = _start_logs(config, resource, log_exporter, self_metrics, grpc_verbosity, keep_log_handlers)
        telemetry._endpoint = _start_endpoint(config, registry)
        telemetry._metric_push = _start_metric_push(config, registry, resource, self_metrics, telemetry._outages)
    except BaseException:
        telemetry.shutdown(timeout=1.0)
        raise
    telemetry.metrics_url = telemetry._endpoint.url if telemetry._endpoint is not None else None
    return telemetry


def _start_logs(
    config: Config,
    resource: Any,
    log_exporter: Any,
    self_metrics: SelfMetrics,
    grpc_verbosity: GrpcVerbosity,
    keep_handlers: bool,
) -> LogPipeline:
    return LogPipeline.start(
        directives=config.log_directives,
        log_format=config.log_format,
        service_name=config.service_name,
        resource=resource,
        otlp_exporter=log_exporter,
        dropped_counter=self_metrics.log_records_dropped,
        queue_size=config.log_queue_size,
        keep_handlers=keep_handlers,
        grpc_verbosity=grpc_verbosity,
    )


def _start_endpoint(config: Config, registry: CollectorRegistry) -> MetricsEndpoint | WorkerGroup | None:
    if config.metrics_addr is None:
        return None
    from hoptel.endpoint import MetricsEndpoint, TLSFiles

    tls = TLSFiles.from_settings(config.metrics_tls_cert, config.metrics_tls_key, config.metrics_tls_client_ca)
    host, port = config.metrics_addr.host, config.metrics_addr.port
    if port != 0 and config.metrics_dir != "off":
        # A fixed address may be shared by several worker processes of this service: see hoptel.worker_group.
        from hoptel.worker_dir import WorkerDirectory
        from hoptel.worker_group import WorkerGroup

        directory = WorkerDirectory.resolve(config.metrics_dir, config.service_name, host, port)
        return WorkerGroup.join(
            registry, directory, host=host, port=port, tls=tls, interval_s=config.metrics_publish_interval_s
        )
    return MetricsEndpoint.start(registry, host=host, port=port, tls=tls)


def _start_metric_push(
    config: Config, registry: CollectorRegistry, resource: Any, self_metrics: SelfMetrics, outages: list[OutageTracker]
) -> MetricPush | None:
    """The OTLP metric push, if configured; its exporter's outage tracker is appended to ``outages``."""
    if config.metrics is None:
        return None
    from hoptel.export_attempts import track_exporter
    from hoptel.metric_export import MetricPush, build_metric_exporter
    from hoptel.otlp_metrics import MetricConverter

    exporter = build_metric_exporter(config.metrics, config.metric_export_timeout_s)
    failed_pushes = self_metrics.metric_export_failures
    tracker = track_exporter(  # "dropped" counts failed pushes: their points go out with the next one
        exporter,
        "metrics",
        config.metrics.endpoint,
        self_metrics.export_attempt_failures.labels("metrics"),
        lambda: failed_pushes.value,
        unit="pushes",
    )
    if tracker is not None:
        outages.append(tracker)
    return MetricPush(
        MetricConverter(registry, config.semconv_opt_in, delta=config.metrics_temporality == "delta"),
        exporter,
        resource,
        interval_s=config.metric_export_interval_s,
        timeout_s=config.metric_export_timeout_s,
        exported=self_metrics.metric_exports,
        failed=self_metrics.metric_export_failures,
        registry=registry,
    )


def _disabled(config: Config) -> Telemetry:
    from hoptel.propagate import propagator_from_env

    return Telemetry(config, trace.NoOpTracerProvider(), CollectorRegistry(), propagator_from_env("none"))


def _install_global_provider(provider: trace.TracerProvider) -> None:
    """Make ``provider`` the OTel global, replacing only a provider an earlier ``setup()`` installed.

    OpenTelemetry lets the global be set once per process. Tests and notebooks call ``setup()`` many times, so a
    provider hoptel itself installed is replaced (through the API's private set-once guard); a provider the
    application installed is left alone.
    """
    with _lock:
        current_provider = trace.get_tracer_provider()
        ours = any(current_provider is p for p in _installed_providers)
        if ours:
            allow_tracer_provider_reset()  # the API's private set-once guard: see hoptel.otel_internals
        if ours or isinstance(current_provider, trace.ProxyTracerProvider):
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is provider:
                _installed_providers[:] = [provider]


def current(telemetry: Telemetry | None = None) -> Telemetry:
    """The Telemetry a factory should use: the given one, the latest ``setup()``'s, or a process-wide default.

    The default uses the OTel global tracer provider and one process-wide hoptel registry (not served anywhere
    unless the application serves it), and propagators from OTEL_PROPAGATORS.
    """
    if telemetry is not None:
        return telemetry
    latest = _latest
    if latest is not None:
        return latest
    global _fallback
    with _lock:
        if _fallback is None:
            from hoptel.propagate import propagator_from_env

            config = Config.load(os.environ, None, {"metrics_addr": "off"})
            _fallback = Telemetry(
                config,
                trace.get_tracer_provider(),
                CollectorRegistry(),
                propagator_from_env(config.propagators),
            )
        return _fallback
