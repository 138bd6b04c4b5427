"""The public API named in DESIGN.md stays importable under its names."""

from __future__ import annotations

import subprocess
import sys

import hoptel

PUBLIC = {
    "ASGIMiddleware",
    "AsyncHTTPTransport",
    "HTTPTransport",
    "Telemetry",
    "aio_client_interceptor",
    "aio_client_interceptors",
    "aio_server_interceptor",
    "client_interceptor",
    "instrument",
    "instrument_httpx",
    "server_interceptor",
    "setup",
    "uninstrument",
}


def test_all_is_pinned() -> None:
    """hoptel.__all__ lists exactly the documented public names (add, don't rename)."""
    assert set(hoptel.__all__) >= PUBLIC


def test_every_public_name_resolves() -> None:
    """Each public name resolves to a callable."""
    for name in PUBLIC:
        assert callable(getattr(hoptel, name)), name


def test_import_has_no_side_effects() -> None:
    """Importing hoptel loads neither grpc nor httpx, starts no thread and installs no tracer provider."""
    script = (
        "import sys, threading, hoptel;"
        "from opentelemetry import trace;"
        "print('grpc' in sys.modules, 'httpx' in sys.modules, threading.active_count(),"
        " type(trace.get_tracer_provider()).__name__)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split() == ["False", "False", "1", "ProxyTracerProvider"]


def test_receiver_is_public() -> None:
    """OTLPReceiver is importable from hoptel.receiver."""
    from hoptel.receiver import OTLPReceiver

    assert callable(OTLPReceiver)
