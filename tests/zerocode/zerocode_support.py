"""Helpers for the zero-code tests: the echo service as ``zerocode.test.Echo``, a Starlette app, span/metric digests.

The tests call the service's (``support.grpc_echo``) ``Unary`` (echoes) and ``ServerStream`` (``b"n"`` streams
``b"0"``..``b"n-1"``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support import grpc_echo
from support.programs import installed_program

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

__all__ = [
    "SERVER_STREAM",
    "SERVICE",
    "UNARY",
    "aio_handler",
    "http_app",
    "metric_digest",
    "span_digest",
    "sync_handler",
]

SERVICE = "zerocode.test.Echo"
UNARY = f"/{SERVICE}/Unary"
SERVER_STREAM = f"/{SERVICE}/ServerStream"
# Attributes that differ between two runs against two servers: ports and peer addresses.
_VOLATILE = {"server.port", "network.peer.port", "url.full"}


def sync_handler() -> grpc.GenericRpcHandler[Any, Any]:
    """The service for a sync ``grpc.server``."""
    return grpc_echo.sync_handler(SERVICE)


def aio_handler() -> grpc.GenericRpcHandler[Any, Any]:
    """The service for a ``grpc.aio.server``."""
    return grpc_echo.aio_handler(SERVICE)


def http_app() -> Starlette:
    """A plain Starlette app (no middleware): ``/items/{item_id}`` answers 200, ``/missing`` 404."""

    async def item(request: Request) -> Response:
        return PlainTextResponse(request.path_params["item_id"])

    async def missing(request: Request) -> Response:
        return PlainTextResponse("gone", status_code=404)

    return Starlette(routes=[Route("/items/{item_id}", item), Route("/missing", missing)])


def span_digest(spans: list[ReceivedSpan]) -> list[tuple[Any, ...]]:
    """What must match between two runs: name, kind, status, scope and the stable attributes, sorted."""
    return sorted(
        (
            span.name,
            span.kind,
            span.status_code,
            span.scope_name,
            tuple(sorted((k, repr(v)) for k, v in span.attributes.items() if k not in _VOLATILE)),
        )
        for span in spans
    )


def metric_digest(
    tel: hoptel.Telemetry, prefixes: tuple[str, ...]
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Counter values and histogram counts of the families starting with ``prefixes`` (sums and buckets left out)."""
    digest = {}
    for family in tel.registry.collect():
        if not family.name.startswith(prefixes):
            continue
        for sample in family.samples:
            if sample.name.endswith(("_total", "_count")):
                digest[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return digest


INSTRUMENTED_TIMEOUT_S = 120


def run_instrumented(
    app: Path, receiver: OTLPReceiver, service: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run ``app`` under ``opentelemetry-instrument``, exporting to ``receiver``; it must exit 0 and print ``done``.

    The environment is the test's without any ``OTEL_``/``HOPTEL_`` variable, plus fast OTLP/gRPC export, no
    metrics endpoint, text logs, and ``settings``.
    """
    command = installed_program("opentelemetry-instrument")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "HOPTEL_"))}
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",
        HOPTEL_METRICS_ADDR="off",
        HOPTEL_LOG_FORMAT="text",
        **settings,
    )
    result = subprocess.run(
        [command, sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTRUMENTED_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "done" in result.stdout.split()
    return result
