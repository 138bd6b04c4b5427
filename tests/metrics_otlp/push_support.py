"""Helpers for the OTLP metrics push tests: traffic on real servers, points and scrape samples side by side."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import grpc
from prometheus_client.registry import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support import grpc_echo as echo

import hoptel
from hoptel.receiver import OTLPReceiver, ReceivedMetric

__all__ = [
    "POLL_TIMEOUT_S",
    "PushingFactory",
    "grpc_calls",
    "http_app",
    "metric_value",
    "points_named",
    "scrape_buckets",
    "wait_until",
]

POLL_TIMEOUT_S = 20.0  # generous: two cores are shared with other jobs


class PushingFactory(Protocol):
    """The ``pushing`` fixture: ``pushing(protocol="grpc", **settings) -> Telemetry``."""

    def __call__(self, protocol: str = ..., **settings: Any) -> hoptel.Telemetry: ...


def grpc_calls(telemetry: hoptel.Telemetry, target: str, n: int) -> None:
    """``n`` unary calls through an instrumented channel; each must succeed."""
    channel = grpc.intercept_channel(grpc.insecure_channel(target), hoptel.client_interceptor(telemetry))
    try:
        unary = channel.unary_unary(echo.UNARY)
        for _ in range(n):
            assert unary(b"ok", timeout=10) == b"ok"
    finally:
        channel.close()


def http_app() -> Starlette:
    """An app with a templated route and a route answering 503."""

    async def item(request: Request) -> Response:
        return PlainTextResponse(request.path_params["item_id"])

    async def down(request: Request) -> Response:
        return PlainTextResponse("down", status_code=503)

    return Starlette(routes=[Route("/items/{item_id}", item), Route("/down", down)])


def points_named(receiver: OTLPReceiver, name: str) -> list[ReceivedMetric]:
    """The points received for metric ``name``, in arrival order."""
    return [point for point in receiver.metrics() if point.name == name]


def scrape_buckets(registry: CollectorRegistry, family: str, labels: dict[str, str]) -> tuple[list[float], list[int]]:
    """The finite bounds and per-bucket (non-cumulative) counts of one series, as a scrape of ``registry`` sees them."""
    bounds: list[float] = []
    cumulative: list[float] = []
    for metric in registry.collect():
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.name != f"{family}_bucket":
                continue
            if {k: v for k, v in sample.labels.items() if k != "le"} != labels:
                continue
            bound = float(sample.labels["le"])
            if bound != float("inf"):
                bounds.append(bound)
            cumulative.append(sample.value)
    counts = [int(b - a) for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
    return bounds, counts


def metric_value(telemetry: hoptel.Telemetry, name: str, labels: dict[str, str] | None = None) -> float:
    """A sample of the Telemetry's registry (0 when absent)."""
    return telemetry.registry.get_sample_value(name, labels) or 0.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = POLL_TIMEOUT_S) -> None:
    """Poll ``condition`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
