"""Stand-in servicer contexts that note the response metadata a handler sends, for a capturing server.

grpcio keeps no copy of the initial metadata a handler sends with ``context.send_initial_metadata(...)``, and
grpc.aio takes trailing metadata as an argument of ``context.abort(code, details, trailing_metadata)`` too. When
``HOPTEL_CAPTURE_GRPC_METADATA_SERVER_RESPONSE`` is set, ``response_capture`` hands the handler one of these in
place of the context it was given: every method and attribute is that context's (``__getattr__``; for grpc.aio the
explicit delegation of ``aio_context.DelegatingServicerContext``), and ``abort`` raises as grpc's does. Only the
calls that send metadata are overridden, to note what grpc accepted: the initial metadata once it was sent, the
trailing metadata of an abort once grpc aborted with it. :meth:`response_metadata` then gives the pairs a span
records: the initial metadata, then the trailing metadata grpc sends (an abort's, else the context's own).

Built only by the capturing variant, once per RPC; with the variable unset handlers get grpc's context as before.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from grpc import aio

from hoptel.forwarding import Forwarding
from hoptel.interceptors.grpc.aio_context import DelegatingServicerContext

__all__ = ["AioNotingServicerContext", "NotingServicerContext"]

_NONE: tuple[()] = ()


def _pairs(initial: Any, aborted: Any, context: Any) -> Any:
    """The initial metadata then the trailing metadata (``aborted`` if an abort gave some, else the context's)."""
    trailing = aborted or context.trailing_metadata()
    if not initial:
        return trailing
    return [*initial, *(trailing or ())]


class NotingServicerContext(Forwarding):
    """A sync ``grpc.ServicerContext`` stand-in: ``context``'s in all but noting the initial metadata sent.

    A sync abort takes no metadata (``abort_with_status`` stores the status's trailing metadata in the context,
    where ``trailing_metadata()`` reads it), so only ``send_initial_metadata`` is overridden.
    """

    __slots__ = ("_context", "_initial")
    _forwarded_to = "_context"  # everything else is grpc's context's

    def __init__(self, context: Any) -> None:
        self._context = context
        self._initial: Any = _NONE

    def send_initial_metadata(self, initial_metadata: Any) -> None:
        """See ``grpc.ServicerContext.send_initial_metadata``; noted once grpc took it."""
        self._context.send_initial_metadata(initial_metadata)
        self._initial = initial_metadata

    def response_metadata(self) -> Any:
        """The ``(key, value)`` pairs the handler sent: initial, then trailing."""
        return _pairs(self._initial, _NONE, self._context)


class AioNotingServicerContext(DelegatingServicerContext):
    """A ``grpc.aio.ServicerContext`` stand-in noting the initial metadata sent and an abort's trailing metadata."""

    __slots__ = ("_aborted", "_initial")

    def __init__(self, context: Any) -> None:
        self._context = context
        self._initial: Any = _NONE
        self._aborted: Any = _NONE

    async def send_initial_metadata(self, initial_metadata: Any) -> None:
        """See ``grpc.aio.ServicerContext.send_initial_metadata``; noted once grpc sent it."""
        await self._context.send_initial_metadata(initial_metadata)
        self._initial = initial_metadata

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> NoReturn:
        """See ``grpc.aio.ServicerContext.abort``; raises as it does, the trailing metadata noted if grpc aborted."""
        try:
            await self._context.abort(code, details, trailing_metadata)
        except aio.AbortError:
            if trailing_metadata:  # empty: grpc sends what set_trailing_metadata() set, which the context holds
                self._aborted = trailing_metadata
            raise
        raise AssertionError("abort() returned")  # pragma: no cover - grpc's abort always raises

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        """See ``grpc.aio.ServicerContext.abort_with_status``; the status's trailing metadata noted as by abort."""
        try:
            await self._context.abort_with_status(status)
        except aio.AbortError:
            trailing_metadata = getattr(status, "trailing_metadata", None)
            if trailing_metadata:
                self._aborted = trailing_metadata
            raise
        raise AssertionError("abort_with_status() returned")  # pragma: no cover - it always raises

    def response_metadata(self) -> Any:
        """The ``(key, value)`` pairs the handler sent: initial, then trailing (an abort's, else the context's)."""
        return _pairs(self._initial, self._aborted, self._context)
