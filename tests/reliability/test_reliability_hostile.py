"""Hostile propagation input, property-based: over 100,000 generated requests, the handler's result never changes.

Hypothesis draws pools of near-miss and junk ``traceparent``, ``tracestate``, ``baggage``, ``b3`` and ``X-B3-*``
values, odd bytes, non-ASCII text, ``-bin`` keys and oversized values (see ``reliability_hostile``); each pool
expands into 128 distinct requests, sent through

* a real sync gRPC server (30,000 requests, spans exported to the receiver),
* a real grpc.aio server (30,000),
* the ASGI middleware called in-process with arbitrary header bytes (30,000), and
* the ASGI middleware under uvicorn, with what HTTP/1.1 lets through (10,000).

For every request the handler's answer is exactly what it would be without hoptel, and inside the handler the
extracted context respects the W3C bounds: at most 32 ``tracestate`` members in at most 8192 characters, at most
180 baggage entries in at most 8192 bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from opentelemetry import baggage, trace
from reliability_hostile import CASES_PER_POOL, HeaderPairs, Pool, pools
from reliability_support import ECHO_METHOD, ECHO_SERVICE, GRPC_OPTIONS, echo_reply, metric_value
from support.grpc_servers import aio_grpc_server, sync_grpc_server
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.receiver import OTLPReceiver

SYNC_GRPC_CASES = 30_000
AIO_GRPC_CASES = 30_000
ASGI_CASES = 30_000
UVICORN_CASES = 10_000
PROPAGATORS = "tracecontext,baggage,b3,b3multi"
MAX_TRACESTATE_MEMBERS = 32
MAX_TRACESTATE_CHARS = 8192
MAX_BAGGAGE_MEMBERS = 180
MAX_BAGGAGE_BYTES = 8192
CALL_TIMEOUT_S = 30.0

pytestmark = pytest.mark.slow


def _hostile(cases: int) -> settings:
    """Hypothesis settings for ``cases`` requests: one example is a pool of ``CASES_PER_POOL`` requests."""
    return settings(
        max_examples=math.ceil(cases / CASES_PER_POOL),
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


class ContextProbe:
    """Called inside each handler: counts calls and records any extracted context beyond the W3C bounds."""

    def __init__(self) -> None:
        self.calls = 0
        self.recording = 0  # sampled SERVER spans: a hostile "not sampled" flag may turn sampling off
        self.violations: list[tuple[int, int, int, int]] = []

    def check(self) -> None:
        """Inspect the current context (the SERVER span's parent came from the request's headers)."""
        self.calls += 1
        span = trace.get_current_span()
        self.recording += span.is_recording()
        state = span.get_span_context().trace_state
        entries = baggage.get_all()
        state_chars = len(state.to_header())
        baggage_bytes = sum(len(key.encode()) + len(str(value).encode()) + 1 for key, value in entries.items())
        if (
            len(state) > MAX_TRACESTATE_MEMBERS
            or state_chars > MAX_TRACESTATE_CHARS
            or len(entries) > MAX_BAGGAGE_MEMBERS
            or baggage_bytes > MAX_BAGGAGE_BYTES
        ):
            self.violations.append((len(state), state_chars, len(entries), baggage_bytes))


def _grpc_handler(probe: ContextProbe, aio: bool) -> grpc.GenericRpcHandler[Any, Any]:
    def unary(request: bytes, context: Any) -> bytes:
        probe.check()
        return echo_reply(request)

    async def aio_unary(request: bytes, context: Any) -> bytes:
        probe.check()
        return echo_reply(request)

    method = grpc.unary_unary_rpc_method_handler(aio_unary if aio else unary)
    return grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Unary": method})


def _requests(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}-{index}".encode() for index in range(n)]


def _assert_probe(probe: ContextProbe, cases: int) -> None:
    assert probe.calls == cases
    assert not probe.violations, probe.violations[:5]


def _sync_server(interceptor: Any, probe: ContextProbe) -> contextlib.AbstractContextManager[str]:
    return sync_grpc_server(_grpc_handler(probe, aio=False), interceptors=[interceptor], options=GRPC_OPTIONS)


def test_hostile_metadata_through_a_sync_grpc_server(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry]
) -> None:
    """30,000 hostile metadata sets: every sync RPC answers as without hoptel; every sampled span is exported."""
    tel = make_telemetry(
        "hostile-sync", propagators=PROPAGATORS, bsp_max_queue_size=2 * SYNC_GRPC_CASES, bsp_max_export_batch_size=2048
    )
    probe = ContextProbe()
    sent = [0]
    with (
        _sync_server(hoptel.server_interceptor(tel), probe) as target,
        grpc.insecure_channel(target, options=GRPC_OPTIONS) as channel,
    ):
        call = channel.unary_unary(ECHO_METHOD, None, None)

        @_hostile(SYNC_GRPC_CASES)
        @given(pools)
        def run(pool: Pool) -> None:
            carriers = pool.grpc_carriers()
            requests = _requests(f"sync{sent[0]}", len(carriers))
            futures = [
                call.future(request, metadata=tuple(carrier), timeout=CALL_TIMEOUT_S)
                for request, carrier in zip(requests, carriers, strict=True)
            ]
            assert [future.result() for future in futures] == [echo_reply(request) for request in requests]
            sent[0] += len(carriers)

        run()
    assert sent[0] >= SYNC_GRPC_CASES
    _assert_probe(probe, sent[0])
    assert tel.force_flush(timeout=60)
    assert metric_value(tel, "hoptel_export_failures_total") == 0
    assert metric_value(tel, "hoptel_spans_dropped_total") == 0
    assert metric_value(tel, "hoptel_spans_exported_total") == probe.recording
    assert len(receiver.wait_for_spans(probe.recording, timeout=60)) == probe.recording


def test_hostile_metadata_through_an_aio_grpc_server(make_telemetry: Callable[..., hoptel.Telemetry]) -> None:
    """30,000 hostile metadata sets: every grpc.aio RPC answers as it would without hoptel."""
    tel = make_telemetry("hostile-aio", propagators=PROPAGATORS, traces_exporter="none")
    probe = ContextProbe()
    sent = [0]
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()

    async def start() -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        server = aio_grpc_server(
            _grpc_handler(probe, aio=True), interceptors=[hoptel.aio_server_interceptor(tel)], options=GRPC_OPTIONS
        )
        target = await stack.enter_async_context(server)
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(target, options=GRPC_OPTIONS))
        return channel.unary_unary(ECHO_METHOD, None, None)

    try:
        call = loop.run_until_complete(start())

        @_hostile(AIO_GRPC_CASES)
        @given(pools)
        def run(pool: Pool) -> None:
            carriers = pool.grpc_carriers()
            requests = _requests(f"aio{sent[0]}", len(carriers))

            async def send_all() -> list[bytes]:
                calls: list[Awaitable[bytes]] = [
                    call(request, metadata=tuple(carrier), timeout=CALL_TIMEOUT_S)
                    for request, carrier in zip(requests, carriers, strict=True)
                ]
                return await asyncio.gather(*calls)

            replies = loop.run_until_complete(send_all())
            assert replies == [echo_reply(request) for request in requests]
            sent[0] += len(carriers)

        run()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
    assert sent[0] >= AIO_GRPC_CASES
    _assert_probe(probe, sent[0])


def _probe_app(probe: ContextProbe) -> Callable[..., Awaitable[None]]:
    """A bare ASGI app answering 200 with ``echo:<path>``, probing the context first."""

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        probe.check()
        body = echo_reply(scope["path"].encode("utf-8", "surrogateescape"))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    return app


async def _call_asgi(app: Callable[..., Awaitable[None]], path: str, headers: HeaderPairs) -> tuple[int, bytes]:
    """One in-process ASGI request: returns the status and the body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return status, body


def test_hostile_headers_through_the_asgi_middleware(make_telemetry: Callable[..., hoptel.Telemetry]) -> None:
    """30,000 hostile header lists (any bytes, any case) in-process: the app's answer is unchanged, nothing raises."""
    tel = make_telemetry("hostile-asgi", propagators=PROPAGATORS, traces_exporter="none")
    probe = ContextProbe()
    app = hoptel.ASGIMiddleware(_probe_app(probe), telemetry=tel)
    sent = [0]
    loop = asyncio.new_event_loop()
    try:

        @_hostile(ASGI_CASES)
        @given(pools)
        def run(pool: Pool) -> None:
            carriers = pool.asgi_carriers()
            paths = [f"/asgi{sent[0]}-{index}" for index in range(len(carriers))]

            async def send_all() -> list[tuple[int, bytes]]:
                return await asyncio.gather(
                    *(_call_asgi(app, path, carrier) for path, carrier in zip(paths, carriers, strict=True))
                )

            results = loop.run_until_complete(send_all())
            assert results == [(200, echo_reply(path.encode())) for path in paths]
            sent[0] += len(carriers)

        run()
    finally:
        loop.close()
    assert sent[0] >= ASGI_CASES
    _assert_probe(probe, sent[0])


def test_hostile_headers_through_uvicorn(make_telemetry: Callable[..., hoptel.Telemetry]) -> None:
    """10,000 hostile header lists over HTTP/1.1 to uvicorn: every response is the app's own 200 and body."""
    tel = make_telemetry("hostile-uvicorn", propagators=PROPAGATORS, traces_exporter="none")
    probe = ContextProbe()
    app = hoptel.ASGIMiddleware(_probe_app(probe), telemetry=tel)
    sent = [0]
    # Oversized values must reach the app, so h11's 16 KiB limit on a request head is raised.
    with run_uvicorn(app, h11_max_incomplete_event_size=1 << 20) as base, httpx.Client(base_url=base) as client:

        @_hostile(UVICORN_CASES)
        @given(pools)
        def run(pool: Pool) -> None:
            for index, carrier in enumerate(pool.http11_carriers()):
                path = f"/uvicorn{sent[0]}-{index}"
                response = client.get(path, headers=carrier, timeout=CALL_TIMEOUT_S)
                assert (response.status_code, response.content) == (200, echo_reply(path.encode()))
            sent[0] += CASES_PER_POOL

        run()
    assert sent[0] >= UVICORN_CASES
    _assert_probe(probe, sent[0])
