"""grpc.aio servicer contexts handed to handlers in place of grpc's: a delegating base and the counting one.

:class:`DelegatingServicerContext` delegates every method of ``grpc.aio.ServicerContext`` (and, through
``__getattr__``, anything a newer grpc adds) to the context it wraps; a stand-in overrides only what it notes.
Stand-ins compose: each wraps whatever context it is given, grpc's or another stand-in.

:class:`CountingServicerContext` counts the messages a streaming handler reads and writes itself: handlers in the
reader/writer style call ``await context.read()`` and ``await context.write(m)`` instead of iterating; the aio
server interceptor hands them this proxy so those messages are counted too. Messages grpc moves itself (the
request iterator, an async generator's responses) go through the real context and are counted where they pass,
never twice. (``noted_context`` holds the stand-in that notes response metadata.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from grpc import aio
from grpc.aio import EOF  # type: ignore[attr-defined]  # grpc-stubs 1.53 lacks grpc.aio.EOF

from hoptel.forwarding import Forwarding
from hoptel.interceptors.grpc.bases import passthrough
from hoptel.interceptors.grpc.streams import count
from hoptel.interceptors.recorder import GrpcHop

if TYPE_CHECKING:
    _ContextBase = aio.ServicerContext[Any, Any]
else:
    _ContextBase = aio.ServicerContext

__all__ = ["CountingServicerContext", "DelegatingServicerContext"]

_API = "grpc.aio.ServicerContext"


class DelegatingServicerContext(Forwarding, _ContextBase):
    """Delegates every method to ``context`` (``_context``); subclasses override what they add."""

    __slots__ = ("_context",)
    _forwarded_to = "_context"  # anything a newer grpc adds

    def __init__(self, context: Any) -> None:
        self._context = context

    # The context's own methods (abort and abort_with_status, below, also never return).
    read = write = send_initial_metadata = passthrough("_context", _API, awaited=True)
    invocation_metadata = peer_identities = peer_identity_key = auth_context = passthrough("_context", _API)
    set_trailing_metadata = set_code = set_details = set_compression = passthrough("_context", _API)
    disable_next_message_compression = add_done_callback = passthrough("_context", _API)
    time_remaining = trailing_metadata = code = details = passthrough("_context", _API)
    peer = passthrough("_context", _API, str)
    cancelled = done = passthrough("_context", _API, bool)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        """See ``grpc.aio.ServicerContext.abort``."""
        await self._context.abort(code, details, trailing_metadata)
        raise AssertionError("abort() returned")  # pragma: no cover - grpc's abort always raises

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        """See ``grpc.aio.ServicerContext.abort_with_status``."""
        await self._context.abort_with_status(status)
        raise AssertionError("abort_with_status() returned")  # pragma: no cover - it always raises


class CountingServicerContext(DelegatingServicerContext):
    """Delegates to ``context``; ``read()`` and ``write()`` also count on ``hop``."""

    __slots__ = ("_hop",)

    def __init__(self, context: Any, hop: GrpcHop) -> None:
        self._context = context
        self._hop = hop

    async def read(self) -> Any:
        """Read one request; counted unless it is ``grpc.aio.EOF``."""
        message = await self._context.read()
        if message is not EOF:
            count(self._hop, "received")
        return message

    async def write(self, message: Any) -> None:
        """Write one response and count it."""
        await self._context.write(message)
        count(self._hop, "sent")
