"""Every use hoptel makes of OpenTelemetry's private internals, in one place, each explained.

OpenTelemetry keeps some things private that hoptel needs: a context key its exporters set, the layout of
``SpanContext``, where the SDK provider keeps its span processors, a few attributes of its exporters and
instrumentors, and the logs signal, whose modules are underscored while that API is in development. Each is named
here once, with what it is, why hoptel needs it and what happens when a release changes it;
``tests/core/test_otel_internals.py`` checks every one against the installed release and names the version in its
failure. The rest of hoptel imports these names from here and never spells an OpenTelemetry private itself.

Cost: the per-hop path uses only the constants (``SUPPRESS_INSTRUMENTATION_KEY``, ``SPAN_KEY``,
``SPAN_CONTEXT_IS_TUPLE``), the current context's ContextVar methods (``current_context``, ``attach_context``;
``detach_context`` is one Python call around its ``reset``) and the one attribute read ``SPAN_PROCESSORS_ATTRIBUTE``
names (spelled out where it is read, in ``hoptel.hop_span``, because a function call there would cost instructions
on every hop). The accessor functions run once per setup, exporter or instrumentation.

Imports: at run time only the standard library and opentelemetry-api (``hoptel.propagate``, which may import only
those, imports this module too). The SDK, exporter and logs names are resolved lazily, on first use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage as _otel_baggage
from opentelemetry import context as _otel_context
from opentelemetry import trace as _otel_trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.trace import DEFAULT_TRACE_STATE, INVALID_SPAN, SpanContext, TraceFlags, TraceState

if TYPE_CHECKING:
    from collections.abc import Mapping

    # The logs signal (see _LAZY below): OpenTelemetry's Logs API and SDK live in underscored modules.
    from opentelemetry._logs import Logger as OTelLogger
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as OTLPGrpcLogExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as OTLPHttpLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider
    from opentelemetry.util.types import AttributeValue

__all__ = [
    "BAGGAGE_KEY",
    "GRPC_EXPORTER_REQUEST_HOOK",
    "GRPC_EXPORTER_STUB_HOOK",
    "OFFICIALLY_INSTRUMENTED_FLAG",
    "OTLP_EXPORTER_LOGGERS",
    "SPAN_CONTEXT_IS_TUPLE",
    "SPAN_KEY",
    "SPAN_PROCESSORS_ATTRIBUTE",
    "SUPPRESS_INSTRUMENTATION_KEY",
    "BatchLogRecordProcessor",
    "LogRecordExportResult",
    "LogRecordExporter",
    "LoggerProvider",
    "OTLPGrpcLogExporter",
    "OTLPHttpLogExporter",
    "OTelLogger",
    "ReadableLogRecord",
    "SeverityNumber",
    "active_span_processor",
    "allow_tracer_provider_reset",
    "attach_context",
    "caller_frame",
    "current_context",
    "detach_context",
    "exporter_client",
    "http_client_transport",
    "official_instrumentor",
    "pin_sdk_service_instance_id",
    "replace_resource_attributes",
    "set_exporter_client",
    "set_http_client_transport",
]

# --- Context keys -----------------------------------------------------------------------------------------------

SUPPRESS_INSTRUMENTATION_KEY: str = _otel_context._SUPPRESS_INSTRUMENTATION_KEY
"""``opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY`` (private to opentelemetry-api, unchanged since 1.0).

What: the context key the SDK's batch processors and metric readers set to True around ``export()``, and that
``opentelemetry.instrumentation.utils.is_instrumentation_enabled`` reads. Why: hoptel's recorder starts no hop while
it is set (an exporter's own gRPC/HTTP call is never traced), zero-code skips exporters' channels, and hoptel's
span batch worker and metric push set it around their exports. If it changed: exporter calls would be traced
(spans about exporting spans) until this follows the new key; the test fails first."""

SPAN_KEY: str = next(iter(_otel_trace.set_span_in_context(INVALID_SPAN, Context())))
"""The context key OpenTelemetry keeps the current span under (``opentelemetry.trace.propagation._SPAN_KEY``).

Derived through the public ``set_span_in_context``, so it cannot drift; what is relied on is the layout: a
context holding ``{SPAN_KEY: span}`` is exactly what ``set_span_in_context`` builds and what ``get_current_span``
reads. Why: one ``Context(entries)`` built per server hop instead of one copy per setter (``hoptel.propagate``,
the recorder). If it changed (more than one entry, or another key read): the test fails; handler code would not
see the hop's span as current."""

BAGGAGE_KEY: str = next(iter(_otel_baggage.set_baggage("k", "v", Context())))
"""The context key OpenTelemetry keeps baggage under; derived like ``SPAN_KEY``, relied on the same way
(``hoptel.propagate`` puts extracted baggage straight into the one Context it builds)."""


# --- The current context ---------------------------------------------------------------------------------------


def _current_context_var() -> ContextVar[Context] | None:
    """The ContextVar OpenTelemetry's default runtime context keeps the current Context in; None for another runtime."""
    runtime = getattr(_otel_context, "_RUNTIME_CONTEXT", None)
    if type(runtime).__name__ != "ContextVarsRuntimeContext":
        return None
    var = getattr(runtime, "_current_context", None)
    return var if isinstance(var, ContextVar) else None


_CURRENT_CONTEXT = _current_context_var()
"""``opentelemetry.context._RUNTIME_CONTEXT._current_context``: the ContextVar holding the current Context.

What: the default runtime context (``ContextVarsRuntimeContext``, chosen unless ``OTEL_PYTHON_CONTEXT`` names
another) keeps the current Context in this ContextVar; ``get_current``/``attach``/``detach`` are two Python calls
each around its ``get``/``set``/``reset``. Why: a hop reads the current context (client) or attaches its own and
detaches it (server, per RPC and per streamed response); calling the ContextVar's C methods directly saves four to
six Python calls per hop. If it changed (another runtime configured, or the attribute renamed): this is None and
``current_context``/``attach_context``/``detach_context`` are OpenTelemetry's public functions; the test fails so
the change is seen."""

if _CURRENT_CONTEXT is not None:
    current_context: Callable[[], Context] = _CURRENT_CONTEXT.get
    attach_context: Callable[[Context], Token[Context]] = _CURRENT_CONTEXT.set
    _reset_context = _CURRENT_CONTEXT.reset

    def detach_context(token: Token[Context]) -> None:
        """Restore the context ``token`` replaced; a failure is logged, never raised (as OpenTelemetry's detach)."""
        try:
            _reset_context(token)
        except Exception:
            _otel_context.detach(token)  # fails the same way inside, where OpenTelemetry logs it

else:  # pragma: no cover - another runtime context
    current_context = _otel_context.get_current
    attach_context = _otel_context.attach
    detach_context = _otel_context.detach


# --- SpanContext layout -----------------------------------------------------------------------------------------


def _span_context_is_tuple() -> bool:
    """Whether SpanContext is the 6-tuple (trace_id, span_id, is_remote, flags, state, is_valid) it has been."""
    state = TraceState([("k", "v")])
    flags = TraceFlags(1)
    try:
        fast = tuple.__new__(SpanContext, (0x1234, 0x56, True, flags, state, True))
        slow = SpanContext(0x1234, 0x56, True, flags, state)
        plain = SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED), DEFAULT_TRACE_STATE)
        return (
            tuple(fast) == tuple(slow)
            and tuple(plain) == (1, 2, False, TraceFlags.SAMPLED, DEFAULT_TRACE_STATE, True)
            and (fast.trace_id, fast.span_id, fast.is_remote, fast.is_valid) == (0x1234, 0x56, True, True)
            and fast.trace_flags is flags
            and fast.trace_state is state
        )
    except Exception:  # pragma: no cover - a future API release
        return False


SPAN_CONTEXT_IS_TUPLE: bool = _span_context_is_tuple()
"""Whether ``SpanContext`` is the tuple ``(trace_id, span_id, is_remote, trace_flags, trace_state, is_valid)``.

What: the class's layout (a ``tuple`` subclass since opentelemetry-api 1.0; not documented). Why: building it with
``tuple.__new__`` (ids already validated) and reading it by unpacking halves the cost of its constructor and
properties on every hop (``hoptel.hop_span``, ``hoptel.otlp_wire``, ``hoptel.propagate``). If it changed: this
probe is False and every user takes the public constructor and properties (slower, still correct); the test
fails so the change is seen."""


# --- The SDK tracer provider's processors -----------------------------------------------------------------------

SPAN_PROCESSORS_ATTRIBUTE = "_span_processors"
"""The attribute of the provider's ``SynchronousMultiSpanProcessor`` holding its processors (a tuple that
``add_span_processor`` replaces, never mutates). ``hoptel.hop_span.HopTracer`` reads it on every hop
(``holder._span_processors is expected``: one attribute read; an accessor call would cost more) to know that hoptel's
batch processor is still the only one. If it changed: the test fails; until then a processor the application adds
later would not see hop spans."""


def active_span_processor(provider: TracerProvider) -> SynchronousMultiSpanProcessor:
    """``provider._active_span_processor``: the SDK provider's processor chain (read once per ``HopTracer``).

    If it changed: ``setup()`` fails with an AttributeError naming it; the test fails first.
    """
    return provider._active_span_processor  # type: ignore[return-value]  # a Synchronous one unless configured


# --- The global tracer provider's set-once guard ----------------------------------------------------------------


def allow_tracer_provider_reset() -> None:
    """Let ``trace.set_tracer_provider`` replace the global once more (``trace._TRACER_PROVIDER_SET_ONCE._done``).

    Why: ``setup()`` called again (tests, notebooks) replaces a provider an earlier ``setup()`` installed; the API
    allows one per process. If it changed: the second ``setup()`` would leave the first provider global (OTel logs a
    warning); the test fails first.
    """
    _otel_trace._TRACER_PROVIDER_SET_ONCE._done = False


# --- The SDK resource -------------------------------------------------------------------------------------------


def replace_resource_attributes(resource: Resource, attributes: Mapping[str, AttributeValue]) -> None:
    """Set ``resource``'s attributes in place (``Resource._attributes``, a ``BoundedAttributes``).

    Why: after a fork every tracer, logger and span of the child shares this one object, and the child needs its
    own ``service.instance.id``. If it changed: the child would report its parent's id; the test fails first.
    """
    resource._attributes = BoundedAttributes(attributes=attributes, immutable=True)


def pin_sdk_service_instance_id(value: str, pid: int) -> bool:
    """Point the SDK's service-instance detector at ``value`` for ``pid``; False where this SDK has no such cache.

    ``opentelemetry.sdk.resources._service_instance_id`` and ``_service_instance_id_pid`` (module variables, SDK
    1.39+) cache the detected id per process. Why: a pinned ``service.instance.id`` must survive the providers' own
    fork hooks, which re-run the detector. If they went away: this returns False and only hoptel's resource carries
    the pinned id.
    """
    from opentelemetry.sdk import resources

    if not hasattr(resources, "_service_instance_id_pid"):
        return False
    resources._service_instance_id = value
    resources._service_instance_id_pid = pid
    return True


# --- The OTLP exporters -----------------------------------------------------------------------------------------
# hoptel observes each export attempt (hoptel.export_attempts) and encodes hop spans itself (hoptel.hop_exporters).
# If one of these went away, the observation is skipped (the exporter works, failures are seen per export only),
# or ``accepts_hop_spans`` is False and the SDK's encoding is used; the test fails first.

GRPC_EXPORTER_STUB_HOOK = "_initialize_channel_and_stub"
"""The gRPC base exporter's method that makes a new stub (after ``UNAVAILABLE``); hoptel's gRPC exporters extend it
(``export_attempts.TracksGrpcOutages``) so the new stub is observed too."""

GRPC_EXPORTER_REQUEST_HOOK = "_translate_data"
"""The gRPC base exporter's method turning a batch into the request, per attempt; ``GrpcHopSpanExporter`` overrides
it with hoptel's encoding."""


def exporter_client(exporter: object) -> Any:
    """The exporter's ``_client``: the gRPC stub, or the HTTP exporters' retrying client (None if it has none)."""
    return getattr(exporter, "_client", None)


def set_exporter_client(exporter: object, client: object) -> None:
    """Replace the exporter's ``_client`` (the gRPC stub, with an observed one)."""
    exporter._client = client  # type: ignore[attr-defined]


def http_client_transport(client: object) -> Any:
    """The HTTP exporters' client's ``_transport``, which it sends every attempt through (None if it has none)."""
    return getattr(client, "_transport", None)


def set_http_client_transport(client: object, transport: object) -> None:
    """Replace the HTTP client's ``_transport`` (with an observed one)."""
    client._transport = transport  # type: ignore[attr-defined]


OTLP_EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
"""The loggers OpenTelemetry's OTLP exporters (and their retrying HTTP client) write to: their module names, one
private. hoptel turns their per-attempt lines into its outage lines. If a module moved: its lines pass through
unchanged; the test fails first."""


# --- Instrumentation (zero-code) --------------------------------------------------------------------------------


def official_instrumentor(instrumentor_class: object) -> object | None:
    """The instance of an official ``BaseInstrumentor`` subclass, if made (its singleton's ``_instance``).

    Why: ``hoptel.instrument()`` steps aside for a protocol the official instrumentation already instruments,
    without importing or instantiating it. If it changed: hoptel would not see the official one active and both
    would instrument (double spans); the test fails first.
    """
    return getattr(instrumentor_class, "_instance", None)


OFFICIALLY_INSTRUMENTED_FLAG = "_is_instrumented_by_opentelemetry"
"""The attribute opentelemetry-instrumentation-httpx sets True on a client it instrumented (``instrument_client``);
zero-code leaves such a client alone. If it changed: such a client would get hoptel's transport too."""

caller_frame = sys._getframe
"""``sys._getframe`` (CPython's, also in PyPy): zero-code looks at who constructs a channel or server, so that
OpenTelemetry's own exporters and hoptel's receiver are never instrumented. If it were missing: the test fails."""


# --- The logs signal --------------------------------------------------------------------------------------------
# OpenTelemetry's Logs API and SDK are underscored modules (``opentelemetry._logs``, ``opentelemetry.sdk._logs``,
# the exporters' ``_log_exporter``) while the signal is in development. The names hoptel uses are imported from
# here; they load on first use (``from hoptel.otel_internals import LoggerProvider``), since the exporters pull in
# grpc. If a release moves one: the import fails with the name, and the test names the module first.

_LAZY: dict[str, tuple[str, str]] = {
    "SeverityNumber": ("opentelemetry._logs", "SeverityNumber"),
    "OTelLogger": ("opentelemetry._logs", "Logger"),
    "LoggerProvider": ("opentelemetry.sdk._logs", "LoggerProvider"),
    "ReadableLogRecord": ("opentelemetry.sdk._logs", "ReadableLogRecord"),
    "BatchLogRecordProcessor": ("opentelemetry.sdk._logs.export", "BatchLogRecordProcessor"),
    "LogRecordExporter": ("opentelemetry.sdk._logs.export", "LogRecordExporter"),
    "LogRecordExportResult": ("opentelemetry.sdk._logs.export", "LogRecordExportResult"),
    "OTLPGrpcLogExporter": ("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
    "OTLPHttpLogExporter": ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
}

if not TYPE_CHECKING:  # mypy sees the imports above, so a misspelt name stays an error

    def __getattr__(name: str) -> Any:
        try:
            module, attribute = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
