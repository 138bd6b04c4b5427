"""OTLP metrics push: a background thread that converts the registry and sends it every export interval.

``OTEL_METRICS_EXPORTER=otlp`` (alone or with ``prometheus``) starts one ``MetricPush`` per Telemetry. It runs
beside the request path and never touches it: a hop only ever updates its histogram series, and the thread reads
the registry (``hoptel.otlp_metrics.MetricConverter``) once per ``OTEL_METRIC_EXPORT_INTERVAL``. Sending is
OpenTelemetry's OTLP metric exporter (gRPC or HTTP/protobuf): its TLS, headers, compression and the OTLP retry
rules (retryable codes, backoff, ``RetryInfo``/``Retry-After``), bounded by ``OTEL_METRIC_EXPORT_TIMEOUT`` and the
exporter timeout, whichever is shorter. A push that fails is counted in ``hoptel_metric_export_failures_total``;
its points go out with the next push (cumulative totals; with delta temporality folded in). Each attempt, retries
included, reaches an outage tracker (signal ``metrics``, ``hoptel.export_outage``): a failed one is counted in
``hoptel_export_attempt_failures_total`` at once, and an outage writes one WARNING and one INFO.

Each process pushes its own series under its own ``service.instance.id``: a child forked after ``setup()``
starts its own thread and its own zeroed series (the parent pushes what it counted before the fork).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import KW_ONLY, dataclass

from opentelemetry import context as otel_context
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.resources import Resource
from prometheus_client.registry import CollectorRegistry

from hoptel.background import Once, on_fork, start_daemon
from hoptel.config import ExporterConfig
from hoptel.exporters import otlp_options
from hoptel.metrics import CounterChild, families_of
from hoptel.otel_internals import SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY
from hoptel.otlp_metrics import MetricConverter

__all__ = ["MetricPush", "build_metric_exporter"]

_log = logging.getLogger(__name__)
# _SUPPRESS_KEY is set while pushing, as the span pipeline does: the exporter's own calls are not instrumented.


def build_metric_exporter(settings: ExporterConfig, export_timeout_s: float) -> MetricExporter:
    """The OTLP metric exporter (gRPC or HTTP/protobuf) for ``settings``; its timeout bounds one push.

    OpenTelemetry's exporters, with each attempt observable for an outage tracker (``hoptel.metric_exporters``).
    """
    options = otlp_options(settings, min(settings.timeout_s, export_timeout_s))
    if settings.protocol == "grpc":  # in a module of its own: an HTTP setup never imports grpc's exporter
        from hoptel.metric_exporters_grpc import GrpcMetricExporter

        return GrpcMetricExporter(**options)
    from hoptel.metric_exporters import HttpMetricExporter

    return HttpMetricExporter(**options)


@dataclass(eq=False, repr=False)
class MetricPush:
    """Pushes a converter's metrics through an exporter every ``interval_s`` on a daemon thread.

    Attributes:
        converter: what to send (reads the registry).
        exporter: where to send it.
        resource: the process's resource (``service.instance.id`` included; ``hoptel.resource`` gives a forked
            child its own id in place).
        interval_s: seconds between pushes.
        timeout_s: the bound of one push, retries included.
        exported: counts successful pushes.
        failed: counts failed pushes.
        registry: the registry the converter reads; its hoptel families are zeroed in a forked child, whose
            parent pushes what happened before the fork under its own id.
    """

    converter: MetricConverter
    exporter: MetricExporter
    resource: Resource
    _: KW_ONLY
    interval_s: float
    timeout_s: float
    exported: CounterChild
    failed: CounterChild
    registry: CollectorRegistry | None = None

    def __post_init__(self) -> None:
        self._closing = Once()
        self._start_thread()
        on_fork(self, after_in_child=MetricPush._after_fork)

    def _start_thread(self) -> None:
        self._cond = threading.Condition()
        self._requested = 0  # flush requests made
        self._done = 0  # flush requests served (a push started after the request finished)
        self._last_ok = True  # whether the latest push was accepted
        self._stop = False
        self._thread = start_daemon(self._run, "hoptel-metric-push")

    def _after_fork(self) -> None:
        """In a forked child: no thread survived the fork; start one, counting from the child's own zero."""
        if self._closing.done:
            return
        if self.registry is not None:
            for family in families_of(self.registry):
                family.reset()
        self.converter.reset()
        self._start_thread()

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval_s
        while True:
            with self._cond:
                while not self._stop and self._requested == self._done and time.monotonic() < next_at:
                    self._cond.wait(max(next_at - time.monotonic(), 0.0))
                stop, serving = self._stop, self._requested
            ok = self._push()
            next_at = time.monotonic() + self.interval_s
            with self._cond:
                self._done = serving
                self._last_ok = ok
                self._cond.notify_all()
            if stop:
                return

    def _push(self) -> bool:
        """Convert and send now, on the calling thread; True if the collector accepted it (or nothing to send)."""
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_KEY, True))
        try:
            data = self.converter.collect(self.resource)
            if data is None:
                return True
            result = self.exporter.export(data, timeout_millis=self.timeout_s * 1000)
        except Exception:  # an exporter bug must not end the thread
            _log.exception("hoptel: metric export raised")
            result = MetricExportResult.FAILURE
        finally:
            otel_context.detach(token)
        if result is MetricExportResult.SUCCESS:
            self.converter.commit()
            self.exported.inc()
            return True
        self.failed.inc()
        return False

    def flush(self, timeout: float) -> bool:
        """Ask the thread for a push now and wait for it.

        Returns:
            True if the push finished within ``timeout`` seconds and the collector accepted it.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._stop or not self._thread.is_alive():
                return False
            self._requested += 1
            wanted = self._requested
            self._cond.notify_all()
            while self._done < wanted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._last_ok

    def shutdown(self, timeout: float) -> None:
        """Push one last time (bounded by ``timeout``), stop the thread and close the exporter; idempotent."""
        if not self._closing.claim():
            return
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
        try:
            self.exporter.shutdown(timeout_millis=max(timeout, 0.0) * 1000)
        except Exception:  # pragma: no cover - closing a channel or a session does not raise in practice
            _log.debug("hoptel: metric exporter shutdown raised", exc_info=True)
