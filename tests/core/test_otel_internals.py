"""Every OpenTelemetry private that ``hoptel.otel_internals`` names still is what hoptel relies on.

One test per internal, against the installed OpenTelemetry: when a release changes one, its test fails with a
message naming the installed versions and what changed, before hoptel misbehaves quietly. Then two guards: the
module imports only the standard library and opentelemetry-api at run time (``hoptel.propagate`` imports it), and
no other module spells an OpenTelemetry private itself.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import DEFAULT_TRACE_STATE, NonRecordingSpan, SpanContext, TraceFlags, TraceState

import hoptel
import hoptel.hop_span
from hoptel import otel_internals
from hoptel.interceptors.recorder import HopRecorder

ROOT = Path(__file__).resolve().parents[2]


def _otel() -> str:
    """The installed OpenTelemetry, for failure messages."""
    names = ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-grpc")
    return ", ".join(f"{name} {version(name)}" for name in names)


def _changed(what: str) -> str:
    return f"OpenTelemetry changed an internal hoptel relies on ({_otel()}): {what} -- see hoptel/otel_internals.py"


# --- SUPPRESS_INSTRUMENTATION_KEY -------------------------------------------------------------------------------


class _RecordingExporter(SpanExporter):
    def __init__(self) -> None:
        self.suppressed: list[object] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.suppressed.append(context.get_value(otel_internals.SUPPRESS_INSTRUMENTATION_KEY))
        return SpanExportResult.SUCCESS


def test_suppress_key_is_the_one_the_sdk_sets_while_exporting() -> None:
    """The SDK's span processor sets exactly this key around ``export()`` (so hoptel skips exporter calls)."""
    assert hasattr(context, "_SUPPRESS_INSTRUMENTATION_KEY"), _changed(
        "opentelemetry.context._SUPPRESS_INSTRUMENTATION_KEY is gone"
    )
    exporter = _RecordingExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("s").end()
    assert exporter.suppressed == [True], _changed(
        "the SDK no longer sets _SUPPRESS_INSTRUMENTATION_KEY while exporting; exporter calls would be traced"
    )


def test_suppress_key_is_the_one_instrumentations_read_and_it_suppresses_hops() -> None:
    """``suppress_instrumentation()`` (what OTel's instrumentations use) suppresses a hoptel hop, and vice versa."""
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation

    token = context.attach(context.set_value(otel_internals.SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        assert not is_instrumentation_enabled(), _changed("is_instrumentation_enabled() reads another key")
    finally:
        context.detach(token)
    with hoptel.setup("internals", environ={}, traces_exporter="none", metrics_addr="off") as tel:
        recorder = HopRecorder.of(tel)
        route = recorder.grpc_route("client", "unary", "/internals.Test/Call")
        with suppress_instrumentation():
            assert recorder.start_grpc_client(route, None) is None, _changed(
                "suppress_instrumentation() sets another key; hoptel would trace exporter calls"
            )
        assert recorder.start_grpc_client(route, None) is not None  # the check above can fail


# --- SPAN_KEY and BAGGAGE_KEY -----------------------------------------------------------------------------------


def test_span_key_is_what_set_span_in_context_writes_and_get_current_span_reads() -> None:
    span = NonRecordingSpan(SpanContext(1, 2, True, TraceFlags(1), DEFAULT_TRACE_STATE))
    assert dict(trace.set_span_in_context(span, Context())) == {otel_internals.SPAN_KEY: span}, _changed(
        "set_span_in_context no longer writes one entry under the span key"
    )
    built = Context({otel_internals.SPAN_KEY: span})
    assert trace.get_current_span(built) is span, _changed("get_current_span reads another key than SPAN_KEY")
    token = context.attach(built)
    try:
        assert trace.get_current_span() is span, _changed("the current span is not read from SPAN_KEY")
    finally:
        context.detach(token)


def test_baggage_key_is_what_set_baggage_writes_and_get_all_reads() -> None:
    assert dict(baggage.set_baggage("a", "1", Context())) == {otel_internals.BAGGAGE_KEY: {"a": "1"}}, _changed(
        "set_baggage no longer writes one entry under the baggage key"
    )
    assert baggage.get_all(Context({otel_internals.BAGGAGE_KEY: {"a": "1"}})) == {"a": "1"}, _changed(
        "baggage.get_all reads another key than BAGGAGE_KEY"
    )


# --- SPAN_CONTEXT_IS_TUPLE --------------------------------------------------------------------------------------


def test_span_context_is_the_six_tuple_hoptel_builds_and_unpacks() -> None:
    state = TraceState([("k", "v")])
    flags = TraceFlags(1)
    built = SpanContext(0xAB, 0xCD, True, flags, state)
    assert issubclass(SpanContext, tuple), _changed("SpanContext is no longer a tuple")
    assert tuple(built) == (0xAB, 0xCD, True, flags, state, True), _changed(
        f"SpanContext's layout is {tuple(built)!r}, not (trace_id, span_id, is_remote, flags, state, is_valid)"
    )
    fast = tuple.__new__(SpanContext, (0xAB, 0xCD, True, flags, state, True))
    assert (fast.trace_id, fast.span_id, fast.is_remote, fast.trace_flags, fast.trace_state, fast.is_valid) == (
        0xAB,
        0xCD,
        True,
        flags,
        state,
        True,
    ), _changed("SpanContext's properties no longer read its tuple fields")
    assert otel_internals.SPAN_CONTEXT_IS_TUPLE, _changed("the SpanContext layout probe fails; hops take the slow path")


# --- The current context's ContextVar ---------------------------------------------------------------------------


def test_the_current_context_functions_are_the_runtime_contexts_contextvar() -> None:
    """The default runtime keeps the current Context in one ContextVar; hoptel's three functions are its methods."""
    assert otel_internals._CURRENT_CONTEXT is not None, _changed("the default runtime context has no ContextVar")
    public = Context({"hoptel.test": 1})
    token = context.attach(public)
    try:
        assert otel_internals.current_context() is public, _changed("get_current() reads another ContextVar")
        ours = Context({"hoptel.test": 2})
        inner = otel_internals.attach_context(ours)
        assert context.get_current() is ours, _changed("attach() sets another ContextVar")
        otel_internals.detach_context(inner)
        assert context.get_current() is public, _changed("detach() resets another ContextVar")
    finally:
        context.detach(token)


def test_a_failed_detach_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    token = otel_internals.attach_context(Context({"hoptel.test": 3}))
    otel_internals.detach_context(token)
    otel_internals.detach_context(token)  # a token used twice: ContextVar.reset raises RuntimeError
    assert "Failed to detach context" in caplog.text


# --- The provider's span processors ------------------------------------------------------------------------------


def test_the_providers_processor_tuple_is_where_hoptel_reads_it_and_is_replaced_on_add() -> None:
    provider = TracerProvider()
    holder = otel_internals.active_span_processor(provider)
    name = otel_internals.SPAN_PROCESSORS_ATTRIBUTE
    before = getattr(holder, name, None)
    assert isinstance(before, tuple), _changed(f"the provider's processor chain has no tuple {name}")
    added = SpanProcessor()
    provider.add_span_processor(added)
    after = getattr(holder, name)
    replaced = _changed(f"add_span_processor no longer replaces {name}; HopTracer would not notice an added processor")
    assert after is not before, replaced
    assert added in after, replaced
    source = inspect.getsource(hoptel.hop_span)
    assert f"._processors_holder.{name} is" in source, "hoptel.hop_span reads another attribute than otel_internals"


# --- The global provider's set-once guard ------------------------------------------------------------------------


def test_the_set_once_guard_can_be_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.util._once import Once

    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    first, second, third = TracerProvider(), TracerProvider(), TracerProvider()
    trace.set_tracer_provider(first)
    trace.set_tracer_provider(second)
    assert trace.get_tracer_provider() is first  # the guard this resets still guards
    otel_internals.allow_tracer_provider_reset()
    trace.set_tracer_provider(third)
    assert trace.get_tracer_provider() is third, _changed(
        "trace._TRACER_PROVIDER_SET_ONCE._done no longer lets setup() replace its own global provider"
    )


# --- The SDK resource --------------------------------------------------------------------------------------------


def test_resource_attributes_are_replaced_in_place() -> None:
    resource = Resource({"a": 1})
    provider = TracerProvider(resource=resource)
    otel_internals.replace_resource_attributes(resource, {"b": 2})
    assert dict(resource.attributes) == {"b": 2}, _changed("Resource no longer keeps its attributes in _attributes")
    assert dict(provider.resource.attributes) == {"b": 2}, _changed("the provider copies its resource")


def test_the_sdk_service_instance_id_cache_can_be_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk import resources

    assert hasattr(resources, "_service_instance_id_pid"), _changed(
        "opentelemetry.sdk.resources._service_instance_id(_pid) are gone; pinned instance ids will not survive a fork"
    )
    monkeypatch.setattr(resources, "_service_instance_id", resources._service_instance_id)
    monkeypatch.setattr(resources, "_service_instance_id_pid", resources._service_instance_id_pid)
    import os

    assert otel_internals.pin_sdk_service_instance_id("pinned-id", os.getpid())
    detected = resources.ServiceInstanceIdResourceDetector().detect()
    assert detected.attributes["service.instance.id"] == "pinned-id", _changed(
        "the service instance detector no longer reads its pid-keyed cache"
    )


# --- The OTLP exporters ------------------------------------------------------------------------------------------


def test_grpc_exporters_have_the_hooks_and_stub_hoptel_uses() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    for cls in (OTLPSpanExporter, otel_internals.OTLPGrpcLogExporter, OTLPMetricExporter):
        assert callable(getattr(cls, otel_internals.GRPC_EXPORTER_STUB_HOOK, None)), _changed(
            f"{cls.__module__}.{cls.__name__} has no {otel_internals.GRPC_EXPORTER_STUB_HOOK}"
        )
        exporter = cls(endpoint="localhost:4317", insecure=True)
        try:
            stub = otel_internals.exporter_client(exporter)
            assert callable(getattr(stub, "Export", None)), _changed(f"{cls.__name__}._client is not its gRPC stub")
        finally:
            exporter.shutdown()
    assert callable(getattr(OTLPSpanExporter, otel_internals.GRPC_EXPORTER_REQUEST_HOOK, None)), _changed(
        f"the gRPC span exporter has no {otel_internals.GRPC_EXPORTER_REQUEST_HOOK}; hop spans use the SDK encoding"
    )


def test_http_exporters_send_through_the_client_and_transport_hoptel_observes() -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    for cls in (OTLPSpanExporter, otel_internals.OTLPHttpLogExporter, OTLPMetricExporter):
        exporter = cls(endpoint="http://localhost:4318/v1/x")
        try:
            client = otel_internals.exporter_client(exporter)
            assert callable(getattr(client, "export", None)), _changed(f"{cls.__name__}._client has no export()")
            transport = otel_internals.http_client_transport(client)
            assert callable(getattr(transport, "request", None)), _changed(
                f"{cls.__name__}._client._transport has no request(); attempts are no longer observed"
            )
            assert getattr(exporter, "_shutdown", None) is False, _changed(f"{cls.__name__} has no _shutdown flag")
        finally:
            exporter.shutdown()


@pytest.mark.parametrize("name", otel_internals.OTLP_EXPORTER_LOGGERS)
def test_exporter_logger_names_are_modules(name: str) -> None:
    assert importlib.util.find_spec(name) is not None, _changed(f"{name} (an exporter's logger) is not a module")


# --- Instrumentation (zero-code) ---------------------------------------------------------------------------------


def test_official_instrumentors_keep_their_instance_where_hoptel_looks() -> None:
    from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

    class Probe(BaseInstrumentor):  # type: ignore[misc]
        def instrumentation_dependencies(self) -> list[str]:
            return []

        def _instrument(self, **kwargs: Any) -> None:
            pass

        def _uninstrument(self, **kwargs: Any) -> None:
            pass

    assert otel_internals.official_instrumentor(Probe) is None
    made = Probe()
    assert otel_internals.official_instrumentor(Probe) is made, _changed("BaseInstrumentor keeps no _instance")
    made.instrument()
    assert made.is_instrumented_by_opentelemetry
    made.uninstrument()


def test_the_httpx_instrumentation_marks_clients_with_the_flag_hoptel_reads() -> None:
    import httpx
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    with httpx.Client() as client:
        HTTPXClientInstrumentor.instrument_client(client)
        try:
            assert getattr(client, otel_internals.OFFICIALLY_INSTRUMENTED_FLAG, False) is True, _changed(
                f"instrument_client no longer sets {otel_internals.OFFICIALLY_INSTRUMENTED_FLAG}"
            )
        finally:
            HTTPXClientInstrumentor.uninstrument_client(client)


def test_caller_frame_peeks_up_the_stack() -> None:
    def callee() -> str:
        return otel_internals.caller_frame(1).f_code.co_name

    assert callee() == "test_caller_frame_peeks_up_the_stack", "sys._getframe no longer counts frames up the stack"


# --- The logs signal ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(otel_internals._LAZY))
def test_log_names_resolve_from_their_underscored_modules(name: str) -> None:
    module_name, attribute = otel_internals._LAZY[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        pytest.fail(_changed(f"{module_name} does not import ({error})"))
    assert hasattr(module, attribute), _changed(f"{module_name} has no {attribute}")
    assert getattr(otel_internals, name) is getattr(module, attribute)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        otel_internals.Nope  # type: ignore[attr-defined]  # noqa: B018


# --- Guards ------------------------------------------------------------------------------------------------------

_API_MODULES = ("opentelemetry.context", "opentelemetry.trace", "opentelemetry.baggage", "opentelemetry.attributes")


def _runtime_imports(tree: ast.Module) -> Iterator[str]:
    """Module-level imports, those under ``if TYPE_CHECKING:`` left out."""
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "opentelemetry":
                yield from (f"opentelemetry.{alias.name}" for alias in node.names)
            else:
                yield node.module


def test_otel_internals_imports_only_the_standard_library_and_the_api_at_run_time() -> None:
    """``hoptel.propagate`` (standard library and opentelemetry-api only) imports this module."""
    tree = ast.parse((ROOT / "hoptel" / "otel_internals.py").read_text())
    imports = list(_runtime_imports(tree))
    assert "opentelemetry.context" in imports
    for module in imports:
        top = module.split(".")[0]
        assert top in sys.stdlib_module_names or top == "__future__" or module in _API_MODULES, module


# Spellings of OpenTelemetry privates (and frame peeking); only otel_internals may hold them.
_PRIVATE = re.compile(
    r"opentelemetry(\.\w+)*\._\w|_SUPPRESS_INSTRUMENTATION_KEY|_active_span_processor|_TRACER_PROVIDER_SET_ONCE"
    r"|\b_getframe|[\"']_client[\"']|[\"']_transport[\"']|[\"']_instance[\"']|_is_instrumented_by_opentelemetry"
    r"|\b_service_instance_id|\._attributes\s*=|[\"']_translate_data[\"']|[\"']_span_processors[\"']"
)


def test_no_other_module_spells_an_opentelemetry_private() -> None:
    for spelled in ("otel_context._SUPPRESS_INSTRUMENTATION_KEY", "sys._getframe(3)", 'getattr(e, "_client")'):
        assert _PRIVATE.search(spelled), spelled  # the scan sees what it is meant to
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("hoptel", "interceptors", "propagate")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "otel_internals.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _PRIVATE.search(line)
    ]
    assert found == [], "use hoptel.otel_internals instead"
