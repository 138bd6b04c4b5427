"""Enrichment hooks: the read-only call views they receive, and running user code so it never fails a call.

Every integration takes ``request_hook=`` and ``response_hook=``: plain callables ``hook(span, call)``. The
request hook runs once the hop's span has started, before the call goes out (client) or before the handler runs
(server); the response hook runs when the call ends (for a stream: when the stream ends), before the span ends,
with the status filled in. Hooks run for every call that is traced, sampled or not: a hook that only adds
attributes can skip the work with ``if not span.is_recording(): return``.

>>> call = GrpcCall("server", "/shop.Orders/Get", "unary", (("x-tenant", "acme"), ("user-agent", "grpc-go")))
>>> call.get("X-Tenant")
'acme'
>>> HttpCall("client", "GET", "http://inventory/items/1", (("accept", "*/*"),)).get("accept")
'*/*'

A hook that raises never fails the call: the exception is counted in ``hoptel_hook_errors_total`` and logged on
the ``hoptel.hooks`` logger at most once a minute per hook, and the call goes on as if the hook had returned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from opentelemetry.trace import Span

from hoptel.metrics import CounterChild

if TYPE_CHECKING:
    import grpc

__all__ = [
    "LOG_INTERVAL_S",
    "GrpcCall",
    "GrpcHook",
    "Guarded",
    "HttpCall",
    "HttpHook",
    "guard",
]

_log = logging.getLogger("hoptel.hooks")

LOG_INTERVAL_S = 60.0
"""A hook that keeps raising is logged at most once per this many seconds (every failure is still counted)."""
_clock = time.monotonic  # the rate limit's clock; a module attribute so tests can move it

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class GrpcCall:
    """What a gRPC hook sees of one RPC; immutable.

    Attributes:
        side: ``"client"`` or ``"server"``.
        method: The full method name, ``/package.Service/Method``.
        rpc_type: ``unary``, ``client_stream``, ``server_stream`` or ``bidi_stream``.
        metadata: The caller's outgoing metadata (client; hoptel's propagation entries not included) or the
            incoming invocation metadata (server), as ``(key, value)`` pairs; ``-bin`` values are ``bytes``.
        code: The final status code (response hook only; None in the request hook).
        details: The status details, if any (response hook only).
    """

    side: str
    method: str
    rpc_type: str
    metadata: tuple[tuple[str, str | bytes], ...]
    code: grpc.StatusCode | None = None
    details: str | None = None

    def get(self, key: str) -> str | bytes | None:
        """The first metadata value for ``key`` (matched case-insensitively), or None."""
        wanted = key.lower()
        for name, value in self.metadata:
            if name == wanted or name.lower() == wanted:
                return value
        return None


@dataclass(frozen=True, slots=True)
class HttpCall:
    """What an HTTP hook sees of one request; immutable.

    Attributes:
        side: ``"client"`` (httpx transports) or ``"server"`` (ASGI middleware).
        method: The request method as sent or received (``GET``, ...).
        url: The full URL. Unlike the span's ``url.full`` it is not redacted: hooks are the application's own code.
        headers: The request headers as ``(name, value)`` pairs, names in lower case (client: as the caller built
            them, without hoptel's propagation headers).
        status_code: The response status (response hook only; None there too when the request failed without one).
        response_headers: The response headers (response hook only).
        route: The route template the router matched, e.g. ``/items/{item_id}`` (server response hook only).
        error: The exception that ended the request, if any (response hook only).
    """

    side: str
    method: str
    url: str
    headers: Pairs
    status_code: int | None = None
    response_headers: Pairs = ()
    route: str | None = None
    error: BaseException | None = None

    def get(self, name: str) -> str | None:
        """The first request header value for ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None


GrpcHook = Callable[[Span, GrpcCall], object]
"""``hook(span, call)`` for the gRPC interceptors; its return value is ignored."""
HttpHook = Callable[[Span, HttpCall], object]
"""``hook(span, call)`` for the httpx transports and the ASGI middleware; its return value is ignored."""

_R = TypeVar("_R")


class Guarded(Generic[_R]):
    """A user callable that never raises into a call: failures are counted, and logged at most once a minute.

    Args:
        function: The user's callable.
        errors: The counter to increment on every failure (``hoptel_hook_errors_total``).
        what: How to name it in the log line (``"request_hook"``, ``"extra_labels"``).
        fallback: What a failed call returns.
        shown: What the log line names (default: ``function``), when ``function`` wraps the user's own.
    """

    __slots__ = ("_errors", "_fallback", "_function", "_last_logged", "_lock", "_shown", "what")

    def __init__(
        self, function: Callable[..., _R], errors: CounterChild, what: str, fallback: _R, shown: object = None
    ) -> None:
        self._function = function
        self._errors = errors
        self._fallback = fallback
        self._shown = function if shown is None else shown
        self._last_logged = float("-inf")
        self._lock = threading.Lock()
        self.what = what

    def __call__(self, *args: Any) -> _R:
        """Call the user's function; on an exception count it, maybe log it, and return the fallback."""
        try:
            return self._function(*args)
        except Exception:
            self._failed()
            return self._fallback

    def _failed(self) -> None:
        self._errors.inc()
        now = _clock()
        with self._lock:
            if now - self._last_logged < LOG_INTERVAL_S:
                return
            self._last_logged = now
        _log.warning(
            "hoptel: %s %r raised; the call went on without it (logged at most once a minute, "
            "every failure is counted in hoptel_hook_errors_total)",
            self.what,
            self._shown,
            exc_info=True,
        )

    def __repr__(self) -> str:
        return f"Guarded({self.what}={self._shown!r})"


def guard(function: Callable[..., object] | None, errors: CounterChild, what: str) -> Guarded[object] | None:
    """A hook wrapped by :class:`Guarded`, or None when no hook was given."""
    if function is None:
        return None
    if not callable(function):
        raise TypeError(f"{what} must be callable, got {type(function).__name__}")
    return Guarded(function, errors, what, None)
