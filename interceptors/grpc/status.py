"""Reading an RPC's final status from grpcio's objects, and finishing the hop with it.

Servers: the code the handler set (``set_code``) or aborted with, UNKNOWN for an uncaught exception (recorded
once as an exception event), CANCELLED or DEADLINE_EXCEEDED when the client went away. Clients: the code of the
terminated call. Nothing here ever waits: these run once the outcome is known.

>>> cancellation_code(0.0).name, cancellation_code(0.05).name, cancellation_code(None).name, cancellation_code(2.5).name
('DEADLINE_EXCEEDED', 'DEADLINE_EXCEEDED', 'CANCELLED', 'CANCELLED')
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc.aio import AbortError

from hoptel.interceptors.recorder import GrpcHop

__all__ = [
    "cancellation_code",
    "context_code",
    "finish_aio_server_raised",
    "finish_aio_server_returned",
    "finish_from_call",
    "finish_server_raised",
    "finish_server_returned",
    "text",
]

_OK = grpc.StatusCode.OK
_CANCELLED = grpc.StatusCode.CANCELLED
_DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED
_UNKNOWN = grpc.StatusCode.UNKNOWN


def text(value: str | bytes | None) -> str | None:
    """Status details as text: grpcio's sync servicer context keeps them as ``bytes``, aio as ``str``."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or None


DEADLINE_SLACK_S = 0.1
"""A server's RPC that ends this close to its deadline ended by the deadline.

The server's deadline falls after the client's: grpc rounds the ``grpc-timeout`` it sends up (by up to ~1 % of it)
and the server starts its clock only when the call arrives. So when the client's deadline passes, the client's
cancellation can reach the server before the server's own deadline has: without slack a deadline would be
recorded CANCELLED on the server, depending on timing.
"""


def cancellation_code(time_remaining: float | None) -> grpc.StatusCode:
    """How a server saw its RPC end early: the deadline passed (or was about to), or the client cancelled."""
    if time_remaining is not None and time_remaining <= DEADLINE_SLACK_S:
        return _DEADLINE_EXCEEDED
    return _CANCELLED


def context_code(context: Any) -> grpc.StatusCode | None:
    """The code a handler set (``set_code``/``abort``), or None; None too for a context that cannot say."""
    try:
        code = context.code()
    except Exception:  # e.g. a context wrapped by another interceptor without code()
        return None
    return code if isinstance(code, grpc.StatusCode) else None


def _context_details(context: Any) -> str | None:
    try:
        return text(context.details())
    except Exception:
        return None


def finish_server_returned(hop: GrpcHop, context: Any) -> None:
    """Finish a sync server hop whose handler returned (or whose response iterator ended).

    The status is the code the handler set, else OK; an RPC the client already cancelled (or whose deadline
    passed) is CANCELLED / DEADLINE_EXCEEDED, since grpcio will not send what the handler returned.
    """
    if not context.is_active():
        hop.finish(cancellation_code(context.time_remaining()))
        return
    # finish_aio_server_returned's body, written out: calling it costs every sync RPC ~330 instructions (the gate).
    code = context_code(context)
    if code is None or code is _OK:
        hop.finish(_OK)
    else:
        hop.finish(code, _context_details(context))


def finish_server_raised(hop: GrpcHop, context: Any, error: BaseException) -> None:
    """Finish a sync server hop whose handler (or response iterator) raised ``error``.

    ``context.abort()`` raises a bare Exception after setting the code: that is the handler's chosen status, not
    an uncaught exception. grpcio marks it in ``context._state.aborted`` (private: its servicer context's RPC
    state, stable since grpcio 1.x); a context wrapped by another interceptor lacks it, and then a code the handler
    set counts as deliberate. An exception while the client is gone is the cancellation surfacing (grpcio raises
    RpcError from the request iterator). Anything else is uncaught: the client sees the code the handler set, or
    UNKNOWN, and the span gets one exception event.
    """
    code = context_code(context)
    aborted = getattr(getattr(context, "_state", None), "aborted", None)
    if aborted is None:
        aborted = code is not None and code is not _OK
    if aborted:
        hop.finish(code or _UNKNOWN, _context_details(context))
    elif not context.is_active():
        hop.finish(cancellation_code(context.time_remaining()))
    else:
        hop.finish(code or _UNKNOWN, f"{type(error).__qualname__}: {error}", error)


def finish_aio_server_returned(hop: GrpcHop, context: Any) -> None:
    """Finish an aio server hop whose handler returned: the code it set, else OK."""
    code = context_code(context)
    if code is None or code is _OK:
        hop.finish(_OK)
    else:
        hop.finish(code, _context_details(context))


def finish_aio_server_raised(hop: GrpcHop, context: Any, error: BaseException) -> None:
    """Finish an aio server hop whose handler raised ``error``.

    ``AbortError`` is ``context.abort()``: the status it set. ``CancelledError`` (grpc cancels the handler's task)
    and ``GeneratorExit`` (grpc stopped pulling responses) mean the client cancelled or the deadline passed.
    Anything else is uncaught: grpc.aio sends the code the handler set, or UNKNOWN when none (or OK) was set.
    """
    if isinstance(error, AbortError):
        hop.finish(context_code(context) or _UNKNOWN, _context_details(context))
    elif isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        hop.finish(cancellation_code(context.time_remaining()))
    else:
        code = context_code(context)
        if code is None or code is _OK:
            code = _UNKNOWN
        hop.finish(code, f"{type(error).__qualname__}: {error}", error)


def finish_from_call(hop: GrpcHop, call: Any) -> None:
    """Finish a client hop from a terminated sync call/future (never blocks: only called once it is done)."""
    try:
        code = call.code()
    except Exception:  # an object from another interceptor that cannot say: count it as failed
        code = None
    if code is _OK:
        hop.finish(_OK)
        return
    details: str | None = None
    error: BaseException | None = None
    try:
        details = text(call.details())
        exception = call.exception()
        # grpcio's _FailureOutcome carries the exception an interceptor or serializer raised; RpcErrors are just
        # the status, which the span already has.
        if exception is not None and not isinstance(exception, grpc.RpcError):
            error = exception
    except Exception:  # a cancelled future raises FutureCancelledError from exception()
        pass
    hop.finish(code if isinstance(code, grpc.StatusCode) else _UNKNOWN, details, error)
