"""Helpers for the gRPC interceptor tests: echo channels, RPC span pairs, metric samples."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from support import grpc_echo as echo

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

__all__ = [
    "CLIENT_WAYS",
    "AioEcho",
    "AioServe",
    "SyncEcho",
    "SyncServe",
    "aio_client",
    "arpc_pair",
    "arpc_spans",
    "echo_labels",
    "rpc_pair",
    "rpc_spans",
    "sample",
    "sync_client",
]

SyncServe = Callable[..., str]
"""``serve_sync(*interceptors, handler=None) -> target``."""
AioServe = Callable[..., Awaitable[str]]
"""``await serve_aio(*interceptors, handler=None) -> target``."""


class SyncEcho:
    """A channel to the echo service with its four multi-callables."""

    def __init__(self, channel: grpc.Channel, target: str, way: str = "interceptor") -> None:
        self.channel = channel
        self.target = target
        self.way = way
        self.unary: Any = channel.unary_unary(echo.UNARY)
        self.server_stream: Any = channel.unary_stream(echo.SERVER_STREAM)
        self.client_stream: Any = channel.stream_unary(echo.CLIENT_STREAM)
        self.bidi: Any = channel.stream_stream(echo.BIDI)


class AioEcho:
    """A grpc.aio channel to the echo service with its four multi-callables."""

    def __init__(self, channel: grpc.aio.Channel, target: str, way: str = "interceptor") -> None:
        self.channel = channel
        self.target = target
        self.way = way
        self.unary: Any = channel.unary_unary(echo.UNARY, None, None)
        self.server_stream: Any = channel.unary_stream(echo.SERVER_STREAM, None, None)
        self.client_stream: Any = channel.stream_unary(echo.CLIENT_STREAM, None, None)
        self.bidi: Any = channel.stream_stream(echo.BIDI, None, None)


CLIENT_WAYS = ("interceptor", "channel")
"""The two ways a client records its RPCs: hoptel's client interceptor, or ``hoptel.instrument_*channel``."""


def sync_client(telemetry: hoptel.Telemetry, target: str, way: str = "interceptor", **options: Any) -> SyncEcho:
    """An instrumented sync channel to ``target``: intercepted, or wrapped by ``instrument_channel`` (``way``)."""
    if way == "channel":
        channel = hoptel.instrument_channel(grpc.insecure_channel(target), telemetry, target=target, **options)
        return SyncEcho(channel, target, way)
    interceptor = hoptel.client_interceptor(telemetry, target=target, **options)
    return SyncEcho(grpc.intercept_channel(grpc.insecure_channel(target), interceptor), target)


def aio_client(telemetry: hoptel.Telemetry, target: str, way: str = "interceptor", **options: Any) -> AioEcho:
    """An instrumented grpc.aio channel to ``target`` (as ``sync_client``; create inside the event loop)."""
    if way == "channel":
        channel = hoptel.instrument_aio_channel(grpc.aio.insecure_channel(target), telemetry, target=target, **options)
        return AioEcho(channel, target, way)
    interceptors = hoptel.aio_client_interceptor(telemetry, target=target, **options)
    return AioEcho(grpc.aio.insecure_channel(target, interceptors=interceptors), target)


def rpc_spans(receiver: OTLPReceiver, method: str, count: int = 1) -> tuple[list[ReceivedSpan], list[ReceivedSpan]]:
    """Wait for ``count`` CLIENT and SERVER spans of ``method`` (named with or without the leading ``/``)."""
    name = method.lstrip("/")
    spans = receiver.wait_for_spans(2 * count, predicate=lambda span: span.name.lstrip("/") == name)
    clients = [span for span in spans if span.kind == "CLIENT"]
    servers = [span for span in spans if span.kind == "SERVER"]
    assert (len(clients), len(servers)) == (count, count), spans
    return clients, servers


def rpc_pair(receiver: OTLPReceiver, method: str) -> tuple[ReceivedSpan, ReceivedSpan]:
    """The CLIENT and SERVER span of the one RPC of ``method``, checked to be parent and child."""
    (client,), (server,) = rpc_spans(receiver, method)
    assert server.trace_id == client.trace_id
    assert server.parent_span_id == client.span_id
    return client, server


def sample(telemetry: hoptel.Telemetry, name: str, **labels: str) -> float:
    """A sample's value from the Telemetry's registry (0 when the series does not exist)."""
    value = telemetry.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def echo_labels(method: str, rpc_type: str) -> dict[str, str]:
    """The grpc_type / grpc_service / grpc_method labels of an echo method."""
    return {"grpc_type": rpc_type, "grpc_service": echo.SERVICE, "grpc_method": method.rsplit("/", 1)[1]}


async def arpc_spans(
    receiver: OTLPReceiver, method: str, count: int = 1
) -> tuple[list[ReceivedSpan], list[ReceivedSpan]]:
    """:func:`rpc_spans` for async tests: waits in a thread so the event loop (and an aio server) keeps running."""
    return await asyncio.to_thread(rpc_spans, receiver, method, count)


async def arpc_pair(receiver: OTLPReceiver, method: str) -> tuple[ReceivedSpan, ReceivedSpan]:
    """:func:`rpc_pair` for async tests: waits in a thread so the event loop (and an aio server) keeps running."""
    return await asyncio.to_thread(rpc_pair, receiver, method)
