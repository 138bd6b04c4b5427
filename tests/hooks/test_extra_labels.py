"""Extra metric labels: taken from each call, capped per label, exposed in the same metric families."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from hooks_support import UNARY, hook_errors
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.interceptors.extra_labels import MAX_VALUE_LENGTH, OTHER, ExtraLabels
from hoptel.interceptors.hooks import GrpcCall, HttpCall

Serve = Callable[..., str]
TENANTS = 10_000
SERVER_DURATION = "http_server_request_duration_seconds"


def _tenant(call: GrpcCall | HttpCall) -> dict[str, object]:
    return {"tenant": call.get("x-tenant")}


def _samples(tel: hoptel.Telemetry, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in tel.registry.collect()
        for sample in family.samples
        if sample.name == name
    ]


def _app(tel: hoptel.Telemetry, extra: ExtraLabels[HttpCall]) -> Starlette:
    async def item(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/items/{item_id}", item)])
    app.add_middleware(hoptel.ASGIMiddleware, telemetry=tel, extra_labels=extra)
    return app


async def test_cap_holds_under_10000_distinct_tenants(telemetry: hoptel.Telemetry) -> None:
    """10,000 requests, each a new tenant, through the middleware: 50 tenant values kept, the rest under other."""
    tenant = ExtraLabels(["tenant"], _tenant, max_values=50)
    transport = httpx.ASGITransport(app=_app(telemetry, tenant))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        for i in range(TENANTS):
            response = await client.get("/items/1", headers={"x-tenant": f"tenant-{i}"})
            assert response.status_code == 200
    counts = {labels["tenant"]: value for labels, value in _samples(telemetry, f"{SERVER_DURATION}_count")}
    assert len(counts) == 51
    assert counts[OTHER] == TENANTS - 50
    assert sum(counts.values()) == TENANTS
    assert tenant.distinct_values("tenant") == 50


def test_grpc_extra_labels_on_both_sides(telemetry: hoptel.Telemetry, serve_grpc: Serve) -> None:
    """Server and client count each RPC once, in the series carrying its tenant (capped at 2 values + other)."""
    tenant: ExtraLabels[GrpcCall] = ExtraLabels(["tenant"], _tenant, max_values=2)
    target = serve_grpc(hoptel.server_interceptor(telemetry, extra_labels=tenant))
    interceptor = hoptel.client_interceptor(telemetry, extra_labels=ExtraLabels(["tenant"], _tenant, max_values=2))
    with grpc.intercept_channel(grpc.insecure_channel(target), interceptor) as channel:
        for name in ("a", "b", "c", "d", "a"):
            assert channel.unary_unary(UNARY, None, None)(b"hi", metadata=(("x-tenant", name),)) == b"hi"
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"  # no tenant: ""
    base = {"grpc_type": "unary", "grpc_service": "hooks.test.Echo", "grpc_method": "Unary"}
    for side in ("server", "client"):
        handled = {
            labels.get("tenant"): value
            for labels, value in _samples(telemetry, f"grpc_{side}_handled_total")
            if labels.items() >= {**base, "grpc_code": "OK"}.items()
        }
        # the method's plain series exists (its route is shared) but counts nothing: each call is counted once
        assert handled == {"a": 2, "b": 1, OTHER: 2, "": 1, None: 0}
        started = {labels.get("tenant"): value for labels, value in _samples(telemetry, f"grpc_{side}_started_total")}
        assert started == {"a": 2, "b": 1, OTHER: 2, "": 1, None: 0}
        assert sum(v for labels, v in _samples(telemetry, f"grpc_{side}_handling_seconds_count")) == 6
        assert sum(v for labels, v in _samples(telemetry, f"grpc_{side}_msg_sent_total")) == 6


def test_exposition_has_one_family_per_name(telemetry: hoptel.Telemetry, serve_grpc: Serve) -> None:
    """Plain series and series with two different extra label sets share one HELP/TYPE; both formats parse."""
    target = serve_grpc(hoptel.server_interceptor(telemetry))
    for names in (["tenant"], ["tenant", "plan"]):
        interceptor = hoptel.client_interceptor(telemetry, extra_labels=ExtraLabels(names, _tenant))
        with grpc.intercept_channel(grpc.insecure_channel(target), interceptor) as channel:
            assert channel.unary_unary(UNARY, None, None)(b"hi", metadata=(("x-tenant", "acme"),)) == b"hi"
    text = generate_latest(telemetry.registry).decode()
    assert text.count("# TYPE grpc_client_handled_total counter") == 1
    assert text.count("# TYPE grpc_server_handled_total counter") == 1
    openmetrics = generate_openmetrics(telemetry.registry).decode()  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    parsed = text_string_to_metric_families(openmetrics)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    families = {family.name: family for family in parsed}
    client = [s for s in families["grpc_client_handled"].samples if s.name.endswith("_total")]
    # the plain series (zero: the method's shared route), then one series per extra label set
    assert [(s.labels.get("tenant"), s.labels.get("plan"), s.value) for s in client] == [
        (None, None, 0),
        ("acme", None, 1),
        ("acme", "", 1),
    ]
    server = [s for s in families["grpc_server_handled"].samples if s.name.endswith("_total")]
    assert [("tenant" in s.labels, s.labels["grpc_code"], s.value) for s in server] == [(False, "OK", 2)]
    histogram = [s for s in families["grpc_client_handling_seconds"].samples if s.name.endswith("_count")]
    assert [sample.value for sample in histogram] == [0, 1, 1]


def test_label_function_errors_count_and_fall_back(telemetry: hoptel.Telemetry, serve_grpc: Serve) -> None:
    """A labels function that raises: the RPC succeeds, the error is counted, its labels are empty."""

    def broken(call: GrpcCall) -> dict[str, object]:
        raise KeyError("tenant")

    target = serve_grpc(hoptel.server_interceptor(telemetry, extra_labels=ExtraLabels(["tenant"], broken)))
    with grpc.insecure_channel(target) as channel:
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    assert hook_errors(telemetry) == 1
    started = [(labels.get("tenant"), value) for labels, value in _samples(telemetry, "grpc_server_started_total")]
    assert started == [(None, 0), ("", 1)]


def test_http_client_extra_labels(telemetry: hoptel.Telemetry) -> None:
    """Httpx transport: the client duration histogram gets the label from the request headers."""
    tenant: ExtraLabels[HttpCall] = ExtraLabels(["tenant"], _tenant)
    server = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    transport = hoptel.HTTPTransport(telemetry=telemetry, extra_labels=tenant)
    with run_uvicorn(server) as base, httpx.Client(transport=transport) as client:
        assert client.get(f"{base}/", headers={"x-tenant": "acme"}).status_code == 200
    samples = _samples(telemetry, "http_client_request_duration_seconds_count")
    assert [(labels.get("tenant"), labels["http_response_status_code"], value) for labels, value in samples] == [
        ("acme", "200", 1)
    ]


@pytest.mark.parametrize(
    ("names", "error"),
    [
        ([], ValueError),
        (["grpc_code"], ValueError),
        (["le"], ValueError),
        (["__reserved"], ValueError),
        (["bad-name"], ValueError),
        (["tenant", "tenant"], ValueError),
        ("tenant", TypeError),
    ],
)
def test_bad_label_names_are_rejected(names: Any, error: type[Exception]) -> None:
    """Invalid, reserved, repeated names (or one string instead of a list) fail when the option is built."""
    with pytest.raises(error):
        ExtraLabels(names, _tenant)


def test_bad_options_are_rejected() -> None:
    """max_values below 1 and a non-callable function fail when the option is built."""
    with pytest.raises(ValueError, match="max_values"):
        ExtraLabels(["tenant"], _tenant, max_values=0)
    with pytest.raises(TypeError):
        ExtraLabels(["tenant"], "tenant")  # type: ignore[arg-type]  # the error under test


def test_values_are_text_cut_to_length() -> None:
    """Non-text values become text; long ones are cut; None and missing are empty and never capped."""
    labels: ExtraLabels[GrpcCall] = ExtraLabels(["a", "b"], _tenant, max_values=1)
    assert labels.values({"a": 7}) == ("7", "")
    assert labels.values({"a": "x" * 500, "b": None}) == ("other", "")
    assert labels.admit("b", "y" * 500) == "y" * MAX_VALUE_LENGTH
    assert labels.values(None) == ("", "")
