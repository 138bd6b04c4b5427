"""Over the wire: inject on a real client, extract on a real server (grpcio sync and aio, uvicorn + httpx)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from opentelemetry import baggage
from opentelemetry.context import Context
from opentelemetry.trace import TraceState
from propagate_support import SPAN_ID, TRACE_ID, remote, span_ctx, with_baggage
from support.grpc_servers import aio_grpc_server, sync_grpc_server
from support.uvicorn_server import run_uvicorn

from hoptel.propagate import Propagator

METHOD = "/hoptel.test.Echo/Context"
SOURCE = with_baggage({"user": "alice", "note": "a b,c"}, span_ctx(state=TraceState([("vendor", "v")])))
FORMATS = [["tracecontext", "baggage"], ["b3", "baggage"], ["b3multi", "baggage"]]
TIMEOUT_S = 10.0


def _describe(ctx: Context) -> dict[str, Any]:
    sc = remote(ctx)
    return {
        "trace_id": sc.trace_id,
        "span_id": sc.span_id,
        "remote": sc.is_remote,
        "sampled": sc.trace_flags.sampled,
        "state": dict(sc.trace_state),
        "baggage": {key: str(value) for key, value in baggage.get_all(ctx).items()},
    }


def _expected(names: list[str]) -> dict[str, Any]:
    return {
        "trace_id": TRACE_ID,
        "span_id": SPAN_ID,
        "remote": True,
        "sampled": True,
        "state": {"vendor": "v"} if "tracecontext" in names else {},
        "baggage": {"user": "alice", "note": "a b,c"},
    }


def _handlers(prop: Propagator) -> grpc.GenericRpcHandler[bytes, bytes]:
    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        return json.dumps(_describe(prop.extract_metadata(context.invocation_metadata()))).encode()

    return grpc.method_handlers_generic_handler(
        "hoptel.test.Echo", {"Context": grpc.unary_unary_rpc_method_handler(handle)}
    )


@pytest.fixture
def grpc_target() -> Iterator[Callable[[Propagator], str]]:
    """Start sync grpc servers on loopback ephemeral ports; yields a factory taking the server's propagator."""
    with contextlib.ExitStack() as stack:
        yield lambda prop: stack.enter_context(sync_grpc_server(_handlers(prop), workers=2))


@pytest.mark.parametrize("names", FORMATS, ids=[names[0] for names in FORMATS])
def test_grpc_sync_round_trip(grpc_target: Callable[[Propagator], str], names: list[str]) -> None:
    """Metadata injected by a grpcio client is extracted from invocation_metadata() on a grpcio server."""
    prop = Propagator(names)
    target = grpc_target(prop)
    metadata = prop.inject_metadata([("x-request-id", "42"), ("trace-bin", b"\x00\xff")], SOURCE)
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
        reply = call(b"", metadata=tuple(metadata), timeout=TIMEOUT_S)
    assert json.loads(reply) == _expected(names)


async def test_grpc_aio_round_trip() -> None:
    """grpc.aio: metadata injected into grpc.aio.Metadata is extracted on an aio server."""
    prop = Propagator()

    async def handle(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return json.dumps(_describe(prop.extract_metadata(context.invocation_metadata()))).encode()

    handler = grpc.method_handlers_generic_handler(
        "hoptel.test.Echo", {"Context": grpc.unary_unary_rpc_method_handler(handle)}
    )
    async with aio_grpc_server(handler) as target:
        metadata = grpc.aio.Metadata(*prop.inject_metadata(grpc.aio.Metadata(("x-request-id", "42")), SOURCE))
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
            reply = await call(b"", metadata=metadata, timeout=TIMEOUT_S)
    assert json.loads(reply) == _expected(["tracecontext", "baggage"])


Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


def _asgi_app(prop: Propagator) -> ASGIApp:
    async def app(
        scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
    ) -> None:
        assert scope["type"] == "http"
        body = json.dumps(_describe(prop.extract_asgi(scope))).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture
def http_base() -> Iterator[Callable[[Propagator], str]]:
    """Start uvicorn servers (in threads, loopback ephemeral ports); yields a factory taking the propagator."""
    with contextlib.ExitStack() as stack:
        yield lambda prop: stack.enter_context(run_uvicorn(_asgi_app(prop)))


@pytest.mark.parametrize("names", FORMATS, ids=[names[0] for names in FORMATS])
def test_httpx_to_asgi_round_trip(http_base: Callable[[Propagator], str], names: list[str]) -> None:
    """Headers injected into an httpx request are extracted from the ASGI scope by a uvicorn app."""
    prop = Propagator(names)
    base = http_base(prop)
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        request = client.build_request("GET", "/", headers={"x-request-id": "42"})
        prop.inject_headers(request.headers, SOURCE)
        response = client.send(request)
    assert response.json() == _expected(names)


def test_repeated_tracestate_headers_over_http(http_base: Callable[[Propagator], str]) -> None:
    """Two tracestate header lines on the wire are combined by the server side."""
    prop = Propagator()
    base = http_base(prop)
    headers = [
        ("traceparent", f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"),
        ("tracestate", "a=1"),
        ("tracestate", "b=2"),
    ]
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        described = client.get("/", headers=headers).json()
    assert described["state"] == {"a": "1", "b": "2"}
    assert described["span_id"] == SPAN_ID


def test_level_2_tracestate_over_http(http_base: Callable[[Propagator], str]) -> None:
    """A duplicated key across two tracestate lines and a 242-character tenant key survive a real HTTP hop.

    W3C Trace Context Level 2: such a tracestate is inherited (the left-most entry of the key is kept).
    """
    prop = Propagator()
    base = http_base(prop)
    tenant_key = "t" * 242 + "@v"
    headers = [
        ("traceparent", f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"),
        ("tracestate", f"a=1, {tenant_key}=x"),
        ("tracestate", "a=2,b=3"),
    ]
    with httpx.Client(base_url=base, timeout=TIMEOUT_S) as client:
        described = client.get("/", headers=headers).json()
    assert described["state"] == {"a": "1", tenant_key: "x", "b": "3"}
    assert described["span_id"] == SPAN_ID
