"""Request and response hooks on the gRPC interceptors (sync and aio): attributes reach the receiver."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
import pytest
from hooks_support import BIDI, CLIENT_STREAM, SERVER_STREAM, UNARY, Calls, hook_errors, raising_hook
from support.log_records import LogRecords

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

TENANT = (("x-tenant", "acme"),)
Serve = Callable[..., str]
AioServe = Callable[..., Awaitable[str]]


def _call(channel: grpc.Channel, method: str) -> Any:
    """One RPC of ``method`` with the tenant metadata; returns what the caller got."""
    if method == UNARY:
        return channel.unary_unary(method, None, None)(b"hi", metadata=TENANT)
    if method == SERVER_STREAM:
        return list(channel.unary_stream(method, None, None)(b"3", metadata=TENANT))
    if method == CLIENT_STREAM:
        return channel.stream_unary(method, None, None)(iter([b"a", b"b"]), metadata=TENANT)
    return list(channel.stream_stream(method, None, None)(iter([b"a", b"b"]), metadata=TENANT))


EXPECTED = {UNARY: b"hi", SERVER_STREAM: [b"0", b"1", b"2"], CLIENT_STREAM: b"a|b", BIDI: [b"a", b"b"]}


def _pair(receiver: OTLPReceiver, method: str) -> tuple[ReceivedSpan, ReceivedSpan]:
    spans = receiver.wait_for_spans(2, predicate=lambda span: span.name == method.lstrip("/"))
    (client,) = [span for span in spans if span.kind == "CLIENT"]
    (server,) = [span for span in spans if span.kind == "SERVER"]
    return client, server


WAYS = ("interceptor", "channel")  # hoptel's client interceptor, or hoptel.instrument_*channel


def _sync_channel(tel: hoptel.Telemetry, target: str, way: str = "interceptor", **options: Any) -> grpc.Channel:
    if way == "channel":
        return hoptel.instrument_channel(grpc.insecure_channel(target), tel, **options)
    return grpc.intercept_channel(grpc.insecure_channel(target), hoptel.client_interceptor(tel, **options))


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("method", [UNARY, SERVER_STREAM, CLIENT_STREAM, BIDI])
def test_sync_hooks_tag_client_and_server_spans(
    method: str, way: str, telemetry: hoptel.Telemetry, serve_grpc: Serve, receiver: OTLPReceiver
) -> None:
    """Every shape: both hooks on both sides add attributes (method, tenant, final code) seen by the receiver."""
    server_calls, client_calls = Calls(), Calls()
    target = serve_grpc(
        hoptel.server_interceptor(telemetry, request_hook=server_calls.request, response_hook=server_calls.response)
    )
    with _sync_channel(
        telemetry, target, way, request_hook=client_calls.request, response_hook=client_calls.response
    ) as channel:
        assert _call(channel, method) == EXPECTED[method]
    client, server = _pair(receiver, method)
    assert client.attributes["hook.request.client"] == method
    assert client.attributes["hook.tenant"] == "acme"
    assert client.attributes["hook.response.client"] == "OK"
    assert server.attributes["hook.request.server"] == method
    assert server.attributes["hook.tenant"] == "acme"
    assert server.attributes["hook.response.server"] == "OK"
    (request,) = client_calls.requests
    assert (request.side, request.rpc_type, request.code) == ("client", _RPC_TYPES[method], None)
    (response,) = server_calls.responses
    assert (response.side, response.code, response.get("x-tenant")) == ("server", grpc.StatusCode.OK, "acme")


_RPC_TYPES = {UNARY: "unary", SERVER_STREAM: "server_stream", CLIENT_STREAM: "client_stream", BIDI: "bidi_stream"}


@pytest.mark.parametrize("way", WAYS)
def test_response_hooks_see_the_error_status(
    way: str, telemetry: hoptel.Telemetry, serve_grpc: Serve, receiver: OTLPReceiver
) -> None:
    """An aborted RPC: both response hooks get NOT_FOUND and its details."""
    server_calls, client_calls = Calls(), Calls()
    target = serve_grpc(hoptel.server_interceptor(telemetry, response_hook=server_calls.response))
    channel = _sync_channel(telemetry, target, way, response_hook=client_calls.response)
    with channel, pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(UNARY, None, None)(b"abort")
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    client, server = _pair(receiver, UNARY)
    assert client.attributes["hook.response.client"] == "NOT_FOUND"
    assert server.attributes["hook.response.server"] == "NOT_FOUND"
    assert [(c.code, c.details) for c in client_calls.responses] == [(grpc.StatusCode.NOT_FOUND, "no such thing")]
    assert [(c.code, c.details) for c in server_calls.responses] == [(grpc.StatusCode.NOT_FOUND, "no such thing")]


def test_stream_response_hook_runs_when_the_stream_ends(telemetry: hoptel.Telemetry, serve_grpc: Serve) -> None:
    """A bidi stream: no response hook while it is open, one on each side once it ended."""
    server_calls, client_calls = Calls(), Calls()
    target = serve_grpc(hoptel.server_interceptor(telemetry, response_hook=server_calls.response))
    outgoing: queue.Queue[bytes | None] = queue.Queue()

    def requests() -> Iterator[bytes]:
        while (item := outgoing.get(timeout=10)) is not None:
            yield item

    with _sync_channel(telemetry, target, response_hook=client_calls.response) as channel:
        responses: Any = channel.stream_stream(BIDI, None, None)(requests())
        outgoing.put(b"first")
        assert next(responses) == b"first"
        assert (client_calls.responses, server_calls.responses) == ([], [])
        outgoing.put(None)
        assert list(responses) == []
    assert server_calls.responded.wait(10)
    assert [c.code for c in client_calls.responses] == [grpc.StatusCode.OK]
    assert [c.code for c in server_calls.responses] == [grpc.StatusCode.OK]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("method", [UNARY, BIDI])
async def test_aio_hooks_tag_client_and_server_spans(
    method: str, way: str, telemetry: hoptel.Telemetry, serve_aio_grpc: AioServe, receiver: OTLPReceiver
) -> None:
    """grpc.aio: both hooks on both sides add attributes seen by the receiver; the stream's hook runs at its end."""
    server_calls, client_calls = Calls(), Calls()
    target = await serve_aio_grpc(
        hoptel.aio_server_interceptor(telemetry, request_hook=server_calls.request, response_hook=server_calls.response)
    )
    hooks: Any = {"request_hook": client_calls.request, "response_hook": client_calls.response}
    if way == "channel":
        channel = hoptel.instrument_aio_channel(grpc.aio.insecure_channel(target), telemetry, **hooks)
    else:
        interceptors: Any = hoptel.aio_client_interceptor(telemetry, **hooks)  # grpc.aio takes any sequence
        channel = grpc.aio.insecure_channel(target, interceptors=interceptors)
    async with channel:
        if method == UNARY:
            assert await channel.unary_unary(method, None, None)(b"hi", metadata=TENANT) == b"hi"
        else:
            call = channel.stream_stream(method, None, None)(iter([b"a", b"b"]), metadata=TENANT)
            assert [response async for response in call] == [b"a", b"b"]
    client, server = await asyncio.to_thread(_pair, receiver, method)
    assert (client.attributes["hook.request.client"], client.attributes["hook.tenant"]) == (method, "acme")
    assert client.attributes["hook.response.client"] == "OK"
    assert (server.attributes["hook.request.server"], server.attributes["hook.tenant"]) == (method, "acme")
    assert server.attributes["hook.response.server"] == "OK"


@pytest.mark.parametrize("method", [UNARY, SERVER_STREAM, CLIENT_STREAM, BIDI])
def test_raising_hooks_leave_the_call_unchanged(
    method: str, telemetry: hoptel.Telemetry, serve_grpc: Serve, receiver: OTLPReceiver
) -> None:
    """Hooks that raise on both sides: same result, spans still exported, each failure counted."""
    hooks: dict[str, Any] = {"request_hook": raising_hook, "response_hook": raising_hook}
    target = serve_grpc(hoptel.server_interceptor(telemetry, **hooks))
    with _sync_channel(telemetry, target, **hooks) as channel:
        assert _call(channel, method) == EXPECTED[method]
        assert _call(channel, method) == EXPECTED[method]
    spans = receiver.wait_for_spans(4, predicate=lambda span: span.name == method.lstrip("/"))
    assert {span.status_code for span in spans} == {"UNSET"}
    assert hook_errors(telemetry) == 8  # 2 calls x 2 sides x 2 hooks


def test_a_raising_hook_is_logged_once_per_minute(telemetry: hoptel.Telemetry, serve_grpc: Serve) -> None:
    """Three failing calls: counted three times, logged once on hoptel.hooks with the traceback."""
    target = serve_grpc(hoptel.server_interceptor(telemetry))
    with LogRecords("hoptel.hooks") as logs, _sync_channel(telemetry, target, request_hook=raising_hook) as channel:
        for _ in range(3):
            assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    assert hook_errors(telemetry) == 3
    (record,) = logs.records
    assert record.levelname == "WARNING"
    assert "request_hook" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_hooks_run_for_unsampled_calls(make_telemetry: Any, serve_grpc: Serve) -> None:
    """With sampling off the hooks still run (the span is not recording, so the hook can skip its work)."""
    tel = make_telemetry(traces_sampler="always_off")
    recording: list[bool] = []
    calls = Calls()

    def request_hook(span: Any, call: Any) -> None:
        recording.append(span.is_recording())
        calls.request(span, call)

    target = serve_grpc(hoptel.server_interceptor(tel, request_hook=request_hook, response_hook=calls.response))
    with _sync_channel(tel, target) as channel:
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
    assert calls.responded.wait(10)
    assert recording == [False]
    assert [c.code for c in calls.responses] == [grpc.StatusCode.OK]


def test_filtered_methods_run_no_hooks(telemetry: hoptel.Telemetry, serve_grpc: Serve) -> None:
    """A method the filter skips is neither traced nor hooked."""
    calls = Calls()
    target = serve_grpc(hoptel.server_interceptor(telemetry))
    with _sync_channel(telemetry, target, filter=lambda method: method != UNARY, request_hook=calls.request) as channel:
        assert channel.unary_unary(UNARY, None, None)(b"hi") == b"hi"
        assert list(channel.unary_stream(SERVER_STREAM, None, None)(b"1")) == [b"0"]
    assert [call.method for call in calls.requests] == [SERVER_STREAM]


def test_unimplemented_method_runs_the_server_hooks(
    telemetry: hoptel.Telemetry, serve_grpc: Serve, receiver: OTLPReceiver
) -> None:
    """A method the server lacks: its UNIMPLEMENTED span still gets the hooks' attributes."""
    calls = Calls()
    target = serve_grpc(hoptel.server_interceptor(telemetry, request_hook=calls.request, response_hook=calls.response))
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError):
        channel.unary_unary("/hooks.test.Echo/Missing", None, None)(b"hi", metadata=TENANT)
    (span,) = receiver.wait_for_spans(1, predicate=lambda span: span.kind == "SERVER")
    assert span.attributes["hook.request.server"] == "/hooks.test.Echo/Missing"
    assert span.attributes["hook.response.server"] == "UNIMPLEMENTED"
    assert span.attributes["hook.tenant"] == "acme"
