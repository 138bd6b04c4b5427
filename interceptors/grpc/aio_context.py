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

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from grpc import aio
from grpc.aio import EOF  # type: ignore[attr-defined]  # grpc-stubs 1.53 lacks grpc.aio.EOF

from hoptel.interceptors.grpc.streams import count
from hoptel.interceptors.recorder import GrpcHop

if TYPE_CHECKING:
    _ContextBase = aio.ServicerContext[Any, Any]
else:
    _ContextBase = aio.ServicerContext

__all__ = ["CountingServicerContext", "DelegatingServicerContext"]


class DelegatingServicerContext(_ContextBase):
    """Delegates every method to ``context`` (``_context``); subclasses override what they add."""

    __slots__ = ("_context",)

    def __init__(self, context: Any) -> None:
        self._context = context

    async def read(self) -> Any:
        """See ``grpc.aio.ServicerContext.read``."""
        return await self._context.read()

    async def write(self, message: Any) -> None:
        """See ``grpc.aio.ServicerContext.write``."""
        await self._context.write(message)

    async def send_initial_metadata(self, initial_metadata: Any) -> None:
        """See ``grpc.aio.ServicerContext.send_initial_metadata``."""
        await self._context.send_initial_metadata(initial_metadata)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        """See ``grpc.aio.ServicerContext.abort``."""
        await self._context.abort(code, details, trailing_metadata)
        raise AssertionError("abort() returned")  # pragma: no cover - grpc's abort always raises

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        """See ``grpc.aio.ServicerContext.abort_with_status``."""
        await self._context.abort_with_status(status)
        raise AssertionError("abort_with_status() returned")  # pragma: no cover - it always raises

    def set_trailing_metadata(self, trailing_metadata: Any) -> None:
        """See ``grpc.aio.ServicerContext.set_trailing_metadata``."""
        self._context.set_trailing_metadata(trailing_metadata)

    def invocation_metadata(self) -> Any:
        """See ``grpc.aio.ServicerContext.invocation_metadata``."""
        return self._context.invocation_metadata()

    def set_code(self, code: grpc.StatusCode) -> None:
        """See ``grpc.aio.ServicerContext.set_code``."""
        self._context.set_code(code)

    def set_details(self, details: str) -> None:
        """See ``grpc.aio.ServicerContext.set_details``."""
        self._context.set_details(details)

    def set_compression(self, compression: grpc.Compression) -> None:
        """See ``grpc.aio.ServicerContext.set_compression``."""
        self._context.set_compression(compression)

    def disable_next_message_compression(self) -> None:
        """See ``grpc.aio.ServicerContext.disable_next_message_compression``."""
        self._context.disable_next_message_compression()

    def peer(self) -> str:
        """See ``grpc.aio.ServicerContext.peer``."""
        return str(self._context.peer())

    def peer_identities(self) -> Iterable[bytes] | None:
        """See ``grpc.aio.ServicerContext.peer_identities``."""
        identities: Iterable[bytes] | None = self._context.peer_identities()
        return identities

    def peer_identity_key(self) -> str | None:
        """See ``grpc.aio.ServicerContext.peer_identity_key``."""
        key: str | None = self._context.peer_identity_key()
        return key

    def auth_context(self) -> Mapping[str, Iterable[bytes]]:
        """See ``grpc.aio.ServicerContext.auth_context``."""
        auth: Mapping[str, Iterable[bytes]] = self._context.auth_context()
        return auth

    def time_remaining(self) -> Any:
        """See ``grpc.aio.ServicerContext.time_remaining``."""
        return self._context.time_remaining()

    def trailing_metadata(self) -> Any:
        """See ``grpc.aio.ServicerContext.trailing_metadata``."""
        return self._context.trailing_metadata()

    def code(self) -> Any:
        """See ``grpc.aio.ServicerContext.code``."""
        return self._context.code()

    def details(self) -> Any:
        """See ``grpc.aio.ServicerContext.details``."""
        return self._context.details()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        """See ``grpc.aio.ServicerContext.add_done_callback``."""
        self._context.add_done_callback(callback)

    def cancelled(self) -> bool:
        """See ``grpc.aio.ServicerContext.cancelled``."""
        return bool(self._context.cancelled())

    def done(self) -> bool:
        """See ``grpc.aio.ServicerContext.done``."""
        return bool(self._context.done())

    def __getattr__(self, name: str) -> Any:  # anything a newer grpc adds
        if name == "_context":
            raise AttributeError(name)
        return getattr(self._context, name)


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
