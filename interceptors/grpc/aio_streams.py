"""grpc.aio adapters: ending a client hop from a call's done callback, and counting streamed messages.

* :func:`watch_aio_call` ends a client hop when the call is done (completed, failed, cancelled), from grpc's
  done callback, so nothing ever waits on an RPC that never dispatched.
* :func:`count_responses` / :func:`count_sent` count a client's responses and requests as they pass.
* :func:`count_received` counts a server's requests; :func:`server_done_callback` ends a server hop the handler's
  path did not end (a client that cancelled while grpc, not the handler, was waiting).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import grpc

from hoptel.interceptors.grpc.status import cancellation_code, text
from hoptel.interceptors.grpc.streams import count
from hoptel.interceptors.recorder import GrpcHop

__all__ = [
    "aio_call_status",
    "completed",
    "count_received",
    "count_responses",
    "count_sent",
    "finish_from_aio_call",
    "server_done_callback",
    "watch_aio_call",
]

_UNKNOWN = grpc.StatusCode.UNKNOWN
_log = logging.getLogger("hoptel.interceptors")
_OK = grpc.StatusCode.OK
# grpc's C-core status numbers are the StatusCode values; this is grpcio's own (private) mapping, rebuilt.
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def completed(awaitable: Any) -> Any:
    """The result of a coroutine that completes without suspending (None if it would suspend: it is closed)."""
    try:
        awaitable.send(None)
    except StopIteration as done:
        return done.value
    awaitable.close()
    return None


def aio_call_status(call: Any) -> tuple[grpc.StatusCode, str | None]:
    """The final status of a done grpc.aio call, read without awaiting.

    grpc.aio offers the status only through coroutines. For grpc's own call objects the status is read from
    ``call._cython_call._status`` (private: the ``AioRpcStatus`` grpc's ``_call.py`` itself reads); any other
    call object (another interceptor's) has its ``code()``/``details()`` coroutines run to completion, which
    they reach without suspending once the call is done.
    """
    status = getattr(getattr(call, "_cython_call", None), "_status", None)
    if status is not None:
        code = _CODES.get(status.code(), _UNKNOWN)
        return code, None if code is _OK else text(status.details())
    try:
        code = completed(call.code())
        details = completed(call.details()) if code is not _OK else None
    except Exception:
        return _UNKNOWN, None
    return (code if isinstance(code, grpc.StatusCode) else _UNKNOWN), text(details)


def finish_from_aio_call(hop: GrpcHop, call: Any) -> None:
    """Finish a client hop from a done grpc.aio call (the ``add_done_callback`` signature, hop bound first)."""
    try:
        code, details = aio_call_status(call)
        hop.finish(code, details if code is not _OK else None)
    except Exception:  # never into grpc's status handling
        _log.exception("hoptel: ending a gRPC client span failed")


def watch_aio_call(call: Any, hop: GrpcHop) -> None:
    """End ``hop`` when ``call`` is done: now if it already is, else from its done callback."""
    if call.done():
        finish_from_aio_call(hop, call)
    else:
        call.add_done_callback(functools.partial(finish_from_aio_call, hop))


async def count_responses(call: AsyncIterable[Any], hop: GrpcHop) -> AsyncIterator[Any]:
    """Yield a client call's responses, counting each; grpc wraps this so the call's methods stay available."""
    async for response in call:
        count(hop, "received")
        yield response


async def count_sent(requests: AsyncIterable[Any] | Iterable[Any], hop: GrpcHop) -> AsyncIterator[Any]:
    """Yield a client's requests (an async or a plain iterable, as grpc.aio accepts), counting each."""
    if isinstance(requests, AsyncIterable):
        async for request in requests:
            count(hop, "sent")
            yield request
    else:
        for request in requests:
            count(hop, "sent")
            yield request


async def count_received(requests: AsyncIterable[Any], hop: GrpcHop) -> AsyncIterator[Any]:
    """Yield a server's incoming requests to the handler, counting each."""
    async for request in requests:
        count(hop, "received")
        yield request


def server_done_callback(hop: GrpcHop, context: Any) -> None:
    """``context.add_done_callback`` target (hop bound first): ends a hop the handler's path did not end.

    That is an RPC the client cancelled (or whose deadline passed) while grpc, not the handler, was waiting.
    """
    try:
        if not hop.ended:
            hop.finish(cancellation_code(context.time_remaining()))
    except Exception:  # never into grpc's RPC teardown
        _log.exception("hoptel: ending a gRPC server span failed")
