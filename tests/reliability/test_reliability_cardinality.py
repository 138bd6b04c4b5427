"""Cardinality: junk a client can send never grows the metric series without bound.

10,000 random method names against a gRPC server add at most one series per family (the ``unknown`` one); random
URL paths add none, on the server (ASGI middleware under uvicorn) or the client (httpx transport), and no random
name or path appears in the exposition.
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
import httpx
from reliability_support import (
    ECHO_METHOD,
    GRPC_OPTIONS,
    aio_grpc_server,
    exposition,
    series_count,
    starlette_app,
    sync_grpc_server,
)
from support.uvicorn_server import run_uvicorn

import hoptel

if TYPE_CHECKING:
    _GenericRpcHandler = grpc.GenericRpcHandler[bytes, bytes]
else:
    _GenericRpcHandler = grpc.GenericRpcHandler

AIO_METHODS = 10_000
SYNC_METHODS = 1_000
CATCH_ALL_METHODS = 3_000
# The client interceptor's cap on distinct methods per RPC shape (grpc_shared.MAX_CLIENT_METHODS); the server
# side should not allow more.
MAX_SERVER_METHODS = 2_048
IN_FLIGHT = 250
URL_PATHS = 1_000
SERVER_FAMILIES = (
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_msg_received_total",
    "grpc_server_msg_sent_total",
    "grpc_server_handling_seconds",
)
HTTP_FAMILIES = ("http_server_request_duration_seconds", "http_client_request_duration_seconds")
# Characters a gRPC client accepts in a method path (HTTP/2 :path), with some that look like separators.
_PATH_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%/"


def _random_methods(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct method paths: unknown services, unknown methods of a known one, and shapeless junk."""
    shapes: list[Callable[[int], str]] = [
        lambda i: f"/rand{i}.Service{rng.randrange(10**6)}/Method{i}",
        lambda i: f"/hoptel.rel.Echo/Nope{i}",
        lambda i: "/" + "".join(rng.choices(_PATH_CHARS, k=rng.randrange(1, 40))) + f"-{i}",
        lambda i: f"/{i}",
    ]
    return [shapes[i % len(shapes)](i) for i in range(n)]


def _label_values(tel: hoptel.Telemetry) -> set[str]:
    """Every label value ``tel``'s registry exposes, bucket bounds (``le``) aside."""
    return {
        value
        for metric in tel.registry.collect()
        for sample in metric.samples
        for name, value in sample.labels.items()
        if name != "le"
    }


def _series(tel: hoptel.Telemetry, families: tuple[str, ...]) -> dict[str, int]:
    return {family: series_count(tel, family) for family in families}


def _assert_grew_by_at_most_one(before: dict[str, int], after: dict[str, int]) -> None:
    for family, count in after.items():
        assert count - before[family] <= 1, f"{family}: {before[family]} -> {count} series"


async def test_random_methods_on_an_aio_server_add_at_most_one_series(
    make_telemetry: Callable[..., hoptel.Telemetry],
) -> None:
    """10,000 random method names against an aio server: UNIMPLEMENTED each, at most one new series per family."""
    tel = make_telemetry("cardinality-aio", traces_exporter="none")
    methods = _random_methods(random.Random(9), AIO_METHODS)
    async with (
        aio_grpc_server(hoptel.aio_server_interceptor(tel)) as target,
        grpc.aio.insecure_channel(target, options=GRPC_OPTIONS) as channel,
    ):
        assert await channel.unary_unary(ECHO_METHOD, None, None)(b"known", timeout=10) == b"echo:known"
        before = _series(tel, SERVER_FAMILIES)

        async def call(method: str) -> grpc.StatusCode:
            try:
                await channel.unary_unary(method, None, None)(b"x", timeout=30)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        codes: list[grpc.StatusCode] = []
        for start in range(0, len(methods), IN_FLIGHT):
            codes += await asyncio.gather(*(call(method) for method in methods[start : start + IN_FLIGHT]))
    assert set(codes) == {grpc.StatusCode.UNIMPLEMENTED}
    _assert_grew_by_at_most_one(before, _series(tel, SERVER_FAMILIES))
    labels = {"grpc_type": "unary", "grpc_service": "unknown", "grpc_method": "unknown", "grpc_code": "Unimplemented"}
    assert tel.registry.get_sample_value("grpc_server_handled_total", labels) == AIO_METHODS
    # label values, not the whole text: a method named "/1455" must not match a sample value such as 0.01455
    values = _label_values(tel)
    assert not [method for method in methods[::97] if any(method.strip("/") in value for value in values)]


def test_random_methods_on_a_sync_server_add_at_most_one_series(
    make_telemetry: Callable[..., hoptel.Telemetry],
) -> None:
    """1,000 random method names against a sync server add at most one series per family."""
    tel = make_telemetry("cardinality-sync", traces_exporter="none")
    methods = _random_methods(random.Random(5), SYNC_METHODS)
    with (
        sync_grpc_server(hoptel.server_interceptor(tel)) as target,
        grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel,
    ):
        assert channel.unary_unary(ECHO_METHOD, None, None)(b"known", timeout=10) == b"echo:known"
        before = _series(tel, SERVER_FAMILIES)
        futures = [channel.unary_unary(method, None, None).future(b"x", timeout=30) for method in methods]
        codes = {future.code() for future in futures}
    assert codes == {grpc.StatusCode.UNIMPLEMENTED}
    _assert_grew_by_at_most_one(before, _series(tel, SERVER_FAMILIES))


class _CatchAll(_GenericRpcHandler):
    """A generic handler that answers every method name (as proxies and fallback handlers do): it aborts."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes]:
        def reject(request: bytes, context: grpc.ServicerContext) -> bytes:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "no such method here")

        return grpc.unary_unary_rpc_method_handler(reject)


def test_random_methods_on_a_catch_all_server_are_bounded(make_telemetry: Callable[..., hoptel.Telemetry]) -> None:
    """Random method names a catch-all generic handler accepts add a bounded number of series (at most a cap)."""
    tel = make_telemetry("cardinality-catch-all", traces_exporter="none")
    rng = random.Random(7)
    methods = [f"/svc{index}.Service{rng.randrange(10**6)}/Method{index}" for index in range(CATCH_ALL_METHODS)]
    with (
        sync_grpc_server(hoptel.server_interceptor(tel), handler=_CatchAll()) as target,
        grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel,
    ):
        futures = [channel.unary_unary(method, None, None).future(b"x", timeout=30) for method in methods]
        codes = {future.code() for future in futures}
    # grpcio itself (no interceptor at all) answers a few of 3,000 simultaneous aborts with CANCELLED.
    assert codes <= {grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.CANCELLED}
    assert grpc.StatusCode.UNIMPLEMENTED in codes
    assert series_count(tel, "grpc_server_handling_seconds") <= MAX_SERVER_METHODS + 1


def _random_paths(rng: random.Random, n: int) -> list[str]:
    segment = string.ascii_letters + string.digits + "-._~"
    paths = []
    for index in range(n):
        junk = "".join(rng.choices(segment, k=rng.randrange(1, 30)))
        paths.append(f"/items/{junk}{index}" if index % 2 else f"/{junk}/{index}/x")
    return paths


def test_random_url_paths_add_no_series(make_telemetry: Callable[..., hoptel.Telemetry]) -> None:
    """Random URL paths (templated and unrouted) add no series on the ASGI server or the httpx client."""
    tel = make_telemetry("cardinality-http", traces_exporter="none")
    paths = _random_paths(random.Random(3), URL_PATHS)
    app = hoptel.ASGIMiddleware(starlette_app(), telemetry=tel)
    with run_uvicorn(app) as base, httpx.Client(base_url=base, transport=hoptel.HTTPTransport(telemetry=tel)) as client:
        assert client.get("/items/first").status_code == 200
        assert client.get("/first/unrouted").status_code == 404
        # The server records a request after its response went out, so the client can be faster than the last
        # observation: wait until both warm-up requests (200 and 404) are series on the server side.
        deadline = time.monotonic() + 10
        while series_count(tel, "http_server_request_duration_seconds") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = _series(tel, HTTP_FAMILIES)
        assert before["http_server_request_duration_seconds"] == 2
        statuses = {client.get(path).status_code for path in paths}
    assert statuses == {200, 404}
    assert _series(tel, HTTP_FAMILIES) == before
    text = exposition(tel)
    assert 'http_route="/items/{item_id}"' in text
    assert not [path for path in paths if path in text]
