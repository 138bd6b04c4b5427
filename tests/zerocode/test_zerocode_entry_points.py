"""hoptel under ``opentelemetry-instrument``: the distro, configurator and instrumentor entry points.

The subprocess tests need hoptel's entry points in the installed metadata (pyproject's
``[project.entry-points.*]``, then ``pip install -e .``); without them they fail and say so.
"""

from __future__ import annotations

import subprocess
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
from zerocode_support import run_instrumented

import hoptel
from hoptel.interceptors.auto import distro, zerocode
from hoptel.receiver import OTLPReceiver

APP = Path(__file__).with_name("zerocode_app.py")
GROUPS = {
    "opentelemetry_distro": distro.HoptelDistro,
    "opentelemetry_configurator": distro.HoptelConfigurator,
    "opentelemetry_instrumentor": distro.HoptelInstrumentor,
}
REPLACED = "grpc_client,grpc_server,grpc_aio_client,grpc_aio_server,httpx,starlette,fastapi"


def _registered() -> dict[str, object]:
    found = {}
    for group in GROUPS:
        for entry_point in entry_points(group=group, name="hoptel"):
            found[group] = entry_point.load()
    return found


def _require_entry_points() -> None:
    missing = sorted(set(GROUPS) - set(_registered()))
    if missing:
        pytest.fail(
            f"hoptel's entry points are not installed ({', '.join(missing)}): add the [project.entry-points.*] "
            "tables for hoptel.interceptors.auto.distro to pyproject.toml and run `pip install --no-deps -e .`"
        )


def test_entry_points_are_registered() -> None:
    """The installed metadata names hoptel's distro, configurator and instrumentor, each called ``hoptel``."""
    _require_entry_points()
    assert _registered() == GROUPS


def test_distro_skips_the_instrumentors_hoptel_replaces() -> None:
    """Hoptel's distro does not load the official gRPC, httpx, Starlette and FastAPI instrumentors, only others."""
    grpc_client = EntryPoint(
        "grpc_client", "opentelemetry.instrumentation.grpc:GrpcInstrumentorClient", "opentelemetry_instrumentor"
    )
    ours = EntryPoint("hoptel", "hoptel.interceptors.auto.distro:HoptelInstrumentor", "opentelemetry_instrumentor")
    chosen = distro.HoptelDistro()
    chosen.load_instrumentor(grpc_client, skip_dep_check=True)
    assert not GrpcInstrumentorClient().is_instrumented_by_opentelemetry  # type: ignore[no-untyped-call]  # untyped package
    chosen.load_instrumentor(ours, skip_dep_check=True)
    try:
        assert zerocode.is_instrumented()
    finally:
        distro.HoptelInstrumentor().uninstrument()
    assert not zerocode.is_instrumented()
    assert set(REPLACED.split(",")) == distro.REPLACED_INSTRUMENTORS


def test_configurator_sets_hoptel_up_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configurator runs hoptel.setup() from OTEL_* / HOPTEL_* once; a second configure() reuses it."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "configured")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("HOPTEL_METRICS_ADDR", "off")
    configurator = distro.HoptelConfigurator()
    configurator.configure(auto_instrumentation_version="0")
    tel = distro.configured_telemetry()
    assert tel is not None
    try:
        configurator.configure()
        assert distro.configured_telemetry() is tel
        assert tel.config.service_name == "configured"
    finally:
        tel.shutdown()


def _run_app(receiver: OTLPReceiver, **settings: str) -> subprocess.CompletedProcess[str]:
    """Run the test app under opentelemetry-instrument, exporting to ``receiver``; returns the finished process."""
    return run_instrumented(APP, receiver, "zerocode-app", **settings)


def _scopes(receiver: OTLPReceiver) -> list[tuple[str, str, str]]:
    spans = receiver.wait_for_spans(3, predicate=lambda span: span.service_name == "zerocode-app")
    return sorted((span.kind, span.scope_name, span.name) for span in spans)


def test_opentelemetry_instrument_exports_hoptel_spans(receiver: OTLPReceiver) -> None:
    """``opentelemetry-instrument python app.py`` with hoptel's distro: hoptel's spans reach the receiver, once."""
    _require_entry_points()
    _run_app(receiver, OTEL_PYTHON_DISTRO="hoptel", OTEL_PYTHON_CONFIGURATOR="hoptel")
    assert _scopes(receiver) == [
        ("CLIENT", "hoptel", "GET"),
        ("CLIENT", "hoptel", "zerocode.App/Echo"),
        ("SERVER", "hoptel", "zerocode.App/Echo"),
    ]
    assert len(receiver.spans()) == 3  # the process flushed at exit: nothing is still on its way


def test_under_another_distro_disabling_the_official_instrumentors_chooses_hoptel(receiver: OTLPReceiver) -> None:
    """Another distro: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS naming the official ones leaves hoptel's spans."""
    _require_entry_points()
    _run_app(
        receiver,
        OTEL_PYTHON_DISTRO="another",  # no such distro: opentelemetry-instrument falls back to its default one
        OTEL_PYTHON_CONFIGURATOR="hoptel",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=REPLACED,
    )
    assert {scope for _, scope, _ in _scopes(receiver)} == {"hoptel"}
    assert len(receiver.spans()) == 3


def test_under_another_distro_with_both_hoptel_gives_way(receiver: OTLPReceiver) -> None:
    """Another distro, official and hoptel instrumentors all loaded: one span per hop (the official ones), warned."""
    _require_entry_points()
    result = _run_app(receiver, OTEL_PYTHON_DISTRO="another", OTEL_PYTHON_CONFIGURATOR="hoptel")
    assert {scope for _, scope, _ in _scopes(receiver)} == {
        "opentelemetry.instrumentation.grpc",
        "opentelemetry.instrumentation.httpx",
    }
    assert len(receiver.spans()) == 3
    assert "official OpenTelemetry instrumentation is active" in result.stdout + result.stderr


def test_public_names() -> None:
    """hoptel.instrument and hoptel.uninstrument are the zero-code functions (not the module)."""
    assert hoptel.instrument is zerocode.instrument
    assert hoptel.uninstrument is zerocode.uninstrument
    assert {"instrument", "uninstrument"} <= set(hoptel.__all__)
