"""Wrappers that keep a sync streaming RPC's hop open until the stream ends, counting its messages.

* :class:`ClientResponses` stands in for grpcio's response iterator (the ``_MultiThreadedRendezvous``): it is
  still a ``grpc.Call`` and ``grpc.Future`` with ``cancel()``, ``code()``, ``details()``, ``trailing_metadata()``
  and the rest, and counts each response.
* :func:`watch_call` ends a client hop when its call terminates, without keeping the call alive: grpcio cancels
  a response iterator that is garbage-collected, and the hop then ends CANCELLED.
* :class:`ServerResponses` wraps a sync handler's response iterator: the SERVER span is current while the
  handler produces each response, and a client that goes away mid-stream ends the hop (grpcio simply stops
  pulling, so the RPC-termination callback does it).
* :class:`SentCounter` / :class:`ReceivedCounter` count request messages as grpcio pulls them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from hoptel.forwarding import Forwarding
from hoptel.interceptors.grpc.bases import passthrough
from hoptel.interceptors.grpc.status import (
    cancellation_code,
    finish_from_call,
    finish_server_raised,
    finish_server_returned,
)
from hoptel.interceptors.recorder import GrpcHop
from hoptel.otel_internals import attach_context, detach_context

if TYPE_CHECKING:
    from typing_extensions import Self

    _Future = grpc.Future[Any]
else:
    _Future = grpc.Future

__all__ = ["ClientResponses", "ReceivedCounter", "SentCounter", "ServerResponses", "count", "watch_call"]

_CANCELLED = grpc.StatusCode.CANCELLED
_log = logging.getLogger("hoptel.interceptors")


class _CallWatch:
    """The nullary RPC-termination callback of one client call; holds the call only weakly."""

    __slots__ = ("_call", "_hop", "_lock")

    def __init__(self, hop: GrpcHop, call: Any, lock: threading.Lock | None) -> None:
        self._hop = hop
        self._call = weakref.ref(call)
        self._lock = lock

    def __call__(self) -> None:
        try:
            if self._lock is None:
                self._finish()
            else:
                with self._lock:
                    self._finish()
        except Exception:  # never into grpcio's channel thread, whose error path expects a partial
            _log.exception("hoptel: ending a gRPC client span failed")

    def _finish(self) -> None:
        if self._hop.ended:
            return
        call = self._call()
        if call is None:  # the caller dropped the call; grpcio cancelled it on collection
            self._hop.finish(_CANCELLED, "abandoned by the caller")
        else:
            finish_from_call(self._hop, call)


def count(hop: GrpcHop, counter: str) -> None:
    """Count one message on ``hop`` (``"sent"`` or ``"received"``), or on the route if the hop already ended.

    A stream's final status can arrive while the caller has not yet read the last messages; those are still
    counted, straight into the metric, so message totals stay exact.
    """
    if hop.ended:
        route = hop.route
        (route.msg_sent if counter == "sent" else route.msg_received).inc()
    elif counter == "sent":
        hop.sent += 1
    else:
        hop.received += 1


def watch_call(call: Any, hop: GrpcHop, lock: threading.Lock | None = None) -> None:
    """End ``hop`` when ``call`` terminates: now if it already has, else from grpcio's termination callback.

    ``add_callback`` (``grpc.RpcContext``) is used rather than ``add_done_callback``, whose callback holds the
    call itself and so would keep an abandoned call (and its RPC) alive.
    """
    if call.done():
        finish_from_call(hop, call)
        return
    try:
        registered = call.add_callback(_CallWatch(hop, call, lock))
    except (AttributeError, TypeError):  # not a grpcio call (another interceptor's object): hold it until done
        call.add_done_callback(lambda done: finish_from_call(hop, done))
        return
    if not registered:  # it terminated between done() and add_callback()
        finish_from_call(hop, call)


class ClientResponses(Forwarding, grpc.Call, _Future):
    """A response-streaming call that counts responses and ends its hop when the stream ends.

    Iterating, ``cancel()`` and everything grpcio's response iterator offers are passed through to ``call``.
    """

    _forwarded_to = "_call"  # anything else grpcio's object has (debug_error_string, ...)

    def __init__(self, call: Any, hop: GrpcHop) -> None:
        self._call = call
        self._hop = hop
        # grpcio's termination callback (its channel thread) may end the hop while this thread still counts
        # the last responses; the lock keeps the count exact.
        self._lock = threading.Lock()
        watch_call(call, hop, self._lock)

    def __iter__(self) -> ClientResponses:
        return self

    def __next__(self) -> Any:
        try:
            response = next(self._call)
        except StopIteration:
            self._finish()
            raise
        except Exception:  # the RpcError that ended the stream (or what an inner interceptor raised)
            self._finish()
            raise
        with self._lock:
            count(self._hop, "received")
        return response

    def _finish(self) -> None:
        with self._lock:
            finish_from_call(self._hop, self._call)

    def next(self) -> Any:
        """Python 2 style alias grpcio keeps."""
        return self.__next__()

    # grpc.RpcContext, grpc.Call and grpc.Future: the call's own answers (time_remaining: None without a deadline)
    is_active = add_callback = passthrough("_call", "grpc.RpcContext", bool)
    time_remaining = passthrough("_call", "grpc.RpcContext")
    initial_metadata = trailing_metadata = code = details = passthrough("_call", "grpc.Call")
    cancelled = running = done = passthrough("_call", "grpc.Future", bool)
    result = exception = traceback = passthrough("_call", "grpc.Future")

    def cancel(self) -> bool:
        """Cancel the RPC; the hop ends CANCELLED."""
        cancelled = bool(self._call.cancel())
        if cancelled:
            self._finish()
        return cancelled

    def add_done_callback(self, fn: Callable[[Any], None]) -> None:
        """See ``grpc.Future.add_done_callback``; ``fn`` receives this wrapper."""
        self._call.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        return f"<hoptel ClientResponses of {self._call!r}>"


class _RequestCounter:
    """Iterates ``requests``, counting each on ``hop`` (the subclasses' ``__next__`` say as what)."""

    __slots__ = ("_hop", "_requests")

    def __init__(self, requests: Iterator[Any], hop: GrpcHop) -> None:
        self._requests = requests
        self._hop = hop

    def __iter__(self) -> Self:
        return self


class SentCounter(_RequestCounter):
    """Iterates the caller's request iterator for grpcio, counting each as sent on the client hop."""

    __slots__ = ()

    def __next__(self) -> Any:
        request = next(self._requests)
        count(self._hop, "sent")
        return request


class ReceivedCounter(_RequestCounter):
    """Iterates grpcio's request iterator for the handler, counting each as received on the server hop."""

    __slots__ = ()

    def __next__(self) -> Any:
        request = next(self._requests)
        count(self._hop, "received")
        return request

    def next(self) -> Any:
        """Python 2 style alias grpcio's request iterator keeps."""
        return self.__next__()


class ServerResponses:
    """A sync handler's responses, pulled with the SERVER span current; ends the hop with the stream.

    An instance is also the RPC-termination callback (``context.add_callback``): when grpcio stops pulling
    because the client cancelled or the deadline passed, that callback ends the hop.
    """

    __slots__ = ("_context", "_hop", "_responses")

    def __init__(self, responses: Iterable[Any], hop: GrpcHop, context: Any) -> None:
        self._responses = iter(responses)
        self._hop = hop
        self._context = context

    def __iter__(self) -> ServerResponses:
        return self

    def __next__(self) -> Any:
        hop = self._hop
        token = attach_context(hop.context)
        try:
            response = next(self._responses)
        except StopIteration:
            finish_server_returned(hop, self._context)
            raise
        except Exception as error:
            finish_server_raised(hop, self._context, error)
            raise
        finally:
            detach_context(token)
        count(hop, "sent")
        return response

    def __call__(self) -> None:
        """RPC-termination callback: end a hop the stream did not end (the client cancelled, the deadline)."""
        try:
            if not self._hop.ended:
                self._hop.finish(cancellation_code(self._context.time_remaining()))
        except Exception:
            _log.exception("hoptel: ending a gRPC server span failed")
