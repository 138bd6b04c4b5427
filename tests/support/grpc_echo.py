"""The test echo service in all four shapes, sync and aio, on raw bytes (no protos).

It is ``hoptel.test.Echo`` unless a folder names its own (``sync_handler("hooks.test.Echo")``), so the names its
tests assert on stay its own.

A request is a command (see :func:`parse`) that makes the handler answer, abort, set a code, raise, or wait
until the client goes away, so each status path can be driven from the client side.

* ``Unary`` (unary-unary): ``b"ok"`` echoes; commands as below.
* ``ServerStream`` (unary-stream): ``b"3"`` streams ``b"0"``, ``b"1"``, ``b"2"``; ``b"3 CMD"`` then runs the
  command and streams its reply, if any (``b"3 abort"``, ``b"3 wait"``, ``b"3 span"``...).
* ``ClientStream`` (stream-unary): joins the requests with ``b"|"``; a command request acts on arrival.
* ``Bidi`` (stream-stream): echoes each request; a command request acts on arrival.

Commands: ``abort`` (NOT_FOUND), ``set_code`` (INVALID_ARGUMENT, returns normally), ``raise`` (RuntimeError),
``wait`` (until cancelled or the deadline passes), ``span`` (replies with the current span's id, 16 hex digits),
``metadata`` (replies with the invocation metadata as ``key=value`` lines). Anything else is echoed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from opentelemetry import trace

__all__ = [
    "BIDI",
    "CLIENT_STREAM",
    "SERVER_STREAM",
    "SERVICE",
    "UNARY",
    "WAIT_LIMIT_S",
    "aio_handler",
    "sync_handler",
]

SERVICE = "hoptel.test.Echo"
UNARY = f"/{SERVICE}/Unary"
SERVER_STREAM = f"/{SERVICE}/ServerStream"
CLIENT_STREAM = f"/{SERVICE}/ClientStream"
BIDI = f"/{SERVICE}/Bidi"

# The longest a "wait" handler waits for its client to go away; tests cancel or expire well before.
WAIT_LIMIT_S = 10.0

WAITING = threading.Event()
"""Set once a ``wait`` handler waits (its client can now cancel it mid-wait); a test clears it before the call."""


class HandlerError(RuntimeError):
    """What the ``raise`` command raises."""


def _current_span_id() -> bytes:
    return format(trace.get_current_span().get_span_context().span_id, "016x").encode()


def _metadata_lines(context: Any) -> bytes:
    pairs = context.invocation_metadata() or ()
    return "\n".join(f"{key}={value}" for key, value in pairs).encode()


def _sync_act(command: bytes, context: grpc.ServicerContext) -> bytes | None:
    """Run a command in a sync handler; returns its reply (the request itself for non-commands)."""
    if command == b"span":
        return _current_span_id()
    if command == b"metadata":
        return _metadata_lines(context)
    if command == b"abort":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    if command == b"set_code":
        context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
        context.set_details("bad argument")
        return b""
    if command == b"raise":
        raise HandlerError("handler failed")
    if command == b"wait":
        gone = threading.Event()
        context.add_callback(gone.set)
        WAITING.set()
        gone.wait(WAIT_LIMIT_S)
        return b"waited"
    return command


async def _aio_act(command: bytes, context: Any) -> bytes | None:
    """Run a command in an aio handler; returns its reply (the request itself for non-commands)."""
    if command == b"span":
        return _current_span_id()
    if command == b"metadata":
        return _metadata_lines(context)
    if command == b"abort":
        await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    if command == b"set_code":
        context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
        context.set_details("bad argument")
        return b""
    if command == b"raise":
        raise HandlerError("handler failed")
    if command == b"wait":
        WAITING.set()
        await asyncio.sleep(WAIT_LIMIT_S)  # grpc cancels this task when the client goes away
        return b"waited"
    return command


def _split(request: bytes) -> tuple[int, bytes]:
    count, _, then = request.partition(b" ")
    return int(count), then


# -- sync --------------------------------------------------------------------------------------------------------


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes | None:
    return _sync_act(request, context)


def _server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    count, then = _split(request)
    for i in range(count):
        yield str(i).encode()
    if then:
        reply = _sync_act(then, context)
        if reply is not None:
            yield reply


def _client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    received = []
    for request in requests:
        reply = _sync_act(request, context)
        received.append(reply or b"")
    return b"|".join(received)


def _bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    for request in requests:
        reply = _sync_act(request, context)
        if reply is not None:
            yield reply


def sync_handler(service: str = SERVICE) -> grpc.GenericRpcHandler[Any, Any]:
    """The service's generic handler for a sync ``grpc.server``, named ``service``."""
    return grpc.method_handlers_generic_handler(
        service,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
        },
    )


# -- aio -----------------------------------------------------------------------------------------------------------


async def _aio_unary(request: bytes, context: Any) -> bytes | None:
    return await _aio_act(request, context)


async def _aio_server_stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    count, then = _split(request)
    for i in range(count):
        yield str(i).encode()
    if then:
        reply = await _aio_act(then, context)
        if reply is not None:
            yield reply


async def _aio_server_stream_writer(request: bytes, context: Any) -> None:
    count, then = _split(request)
    for i in range(count):
        await context.write(str(i).encode())
    if then:
        reply = await _aio_act(then, context)
        if reply is not None:
            await context.write(reply)


async def _aio_client_stream(requests: AsyncIterator[bytes], context: Any) -> bytes:
    received = []
    async for request in requests:
        reply = await _aio_act(request, context)
        received.append(reply or b"")
    return b"|".join(received)


async def _aio_bidi(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for request in requests:
        reply = await _aio_act(request, context)
        if reply is not None:
            yield reply


async def _aio_bidi_reader_writer(requests: AsyncIterator[bytes], context: Any) -> None:
    while True:
        request = await context.read()
        if request is grpc.aio.EOF:  # type: ignore[attr-defined]  # missing from grpc-stubs
            return
        reply = await _aio_act(request, context)
        if reply is not None:
            await context.write(reply)


def aio_handler(service: str = SERVICE, *, reader_writer: bool = False) -> grpc.GenericRpcHandler[Any, Any]:
    """The service's generic handler for ``grpc.aio.server``, named ``service``.

    Args:
        service: The service name.
        reader_writer: Stream with ``context.read()`` / ``context.write()`` instead of async generators.
    """
    return grpc.method_handlers_generic_handler(
        service,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_aio_unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(
                _aio_server_stream_writer if reader_writer else _aio_server_stream
            ),
            "ClientStream": grpc.stream_unary_rpc_method_handler(_aio_client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(_aio_bidi_reader_writer if reader_writer else _aio_bidi),
        },
    )
