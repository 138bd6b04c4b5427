"""The aio client interceptor handed to grpc.aio in a list: every RPC shape traced, or a loud constructor error.

grpc.aio files each object of a channel's ``interceptors`` under one RPC shape (an if/elif over the four
interfaces), so hoptel's interceptor is a sequence of per-shape interceptors: the plural factory returns it as a
list, and the sequence put inside a list is refused with a message naming the forms that work.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc_support import AioEcho, AioServe, arpc_pair
from support import grpc_echo as echo

import hoptel
from hoptel.receiver import OTLPReceiver

SHAPES = (echo.UNARY, echo.SERVER_STREAM, echo.CLIENT_STREAM, echo.BIDI)


async def _call_every_shape(client: AioEcho) -> None:
    """One RPC of each of the four shapes, each checked for its echo."""
    assert await client.unary(b"one") == b"one"
    assert [response async for response in client.server_stream(b"2 two")] == [b"0", b"1", b"two"]
    assert await client.client_stream(iter([b"a", b"b"])) == b"a|b"
    assert [response async for response in client.bidi(iter([b"x", b"y"]))] == [b"x", b"y"]


async def _traced_shapes(receiver: OTLPReceiver) -> None:
    """Each shape's CLIENT span arrives, parent of its SERVER span."""
    for method in SHAPES:
        client, _server = await arpc_pair(receiver, method)  # arpc_pair checks the parent link
        assert client.kind == "CLIENT"
        assert client.attributes["rpc.method"] == method.rsplit("/", 1)[1]


async def test_plural_list_traces_every_shape(
    telemetry: hoptel.Telemetry, serve_aio: AioServe, receiver: OTLPReceiver
) -> None:
    """``interceptors=hoptel.aio_client_interceptors()`` (a list) traces unary and all three streaming shapes."""
    target = await serve_aio(hoptel.aio_server_interceptor(telemetry))
    interceptors = hoptel.aio_client_interceptors(telemetry, target=target)
    assert isinstance(interceptors, list)
    assert len(interceptors) == len(SHAPES)
    client = AioEcho(grpc.aio.insecure_channel(target, interceptors=interceptors), target)
    try:
        await _call_every_shape(client)
    finally:
        await client.channel.close()
    await _traced_shapes(receiver)


async def test_spread_into_a_list_with_another_interceptor_traces_every_shape(
    telemetry: hoptel.Telemetry, serve_aio: AioServe, receiver: OTLPReceiver
) -> None:
    """The singular spread into a list beside the app's own interceptor traces every shape; both interceptors run."""
    seen: list[str] = []  # grpc.aio gives the method as bytes or str, depending on the version

    class Counting(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc-stubs: generic ABC
        """The app's own unary interceptor: notes each method it sees."""

        async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
            method = client_call_details.method
            seen.append(method.decode() if isinstance(method, bytes) else method)
            return await continuation(client_call_details, request)

    target = await serve_aio(hoptel.aio_server_interceptor(telemetry))
    interceptors: list[Any] = [*hoptel.aio_client_interceptor(telemetry, target=target), Counting()]
    client = AioEcho(grpc.aio.insecure_channel(target, interceptors=interceptors), target)
    try:
        await _call_every_shape(client)
    finally:
        await client.channel.close()
    await _traced_shapes(receiver)
    assert [method.lstrip("/") for method in seen] == [echo.UNARY.lstrip("/")]


async def test_sequence_inside_a_list_fails_at_construction(telemetry: hoptel.Telemetry) -> None:
    """``[hoptel.aio_client_interceptor()]`` makes the channel constructor raise, naming the forms that work."""
    interceptors: list[Any] = [hoptel.aio_client_interceptor(telemetry)]
    with pytest.raises(ValueError, match="Interceptor") as raised:
        grpc.aio.insecure_channel("127.0.0.1:1", interceptors=interceptors)
    message = str(raised.value)
    assert "hoptel.aio_client_interceptors(" in message
    assert "[*hoptel.aio_client_interceptor(" in message


async def test_singular_as_the_sequence_still_traces_every_shape(
    telemetry: hoptel.Telemetry, serve_aio: AioServe, receiver: OTLPReceiver
) -> None:
    """The documented singular form, passed as the interceptor sequence itself, keeps tracing every shape."""
    target = await serve_aio(hoptel.aio_server_interceptor(telemetry))
    interceptors: Any = hoptel.aio_client_interceptor(telemetry, target=target)
    client = AioEcho(grpc.aio.insecure_channel(target, interceptors=interceptors), target)
    try:
        await _call_every_shape(client)
    finally:
        await client.channel.close()
    await _traced_shapes(receiver)
