"""grpc's abstract classes that hoptel's gRPC clients and servers subclass: generic for mypy, plain at run time.

grpc-stubs makes the interceptor, multicallable and call classes generic in the request and response types,
while grpcio's own classes cannot be subscripted; hoptel records messages of any type, so each is ``[Any, Any]``.

A wrapper that must be an instance of one of these classes needs every abstract method, though most of them only
ask the object it wraps; :func:`passthrough` writes those for it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

__all__ = [
    "AioServerInterceptor",
    "AioStreamStreamCall",
    "AioStreamStreamClientInterceptor",
    "AioStreamStreamMultiCallable",
    "AioStreamUnaryCall",
    "AioStreamUnaryClientInterceptor",
    "AioStreamUnaryMultiCallable",
    "AioUnaryStreamCall",
    "AioUnaryStreamClientInterceptor",
    "AioUnaryStreamMultiCallable",
    "AioUnaryUnaryClientInterceptor",
    "AioUnaryUnaryMultiCallable",
    "ServerInterceptor",
    "StreamStreamClientInterceptor",
    "StreamStreamMultiCallable",
    "StreamUnaryClientInterceptor",
    "StreamUnaryMultiCallable",
    "UnaryStreamClientInterceptor",
    "UnaryStreamMultiCallable",
    "UnaryUnaryClientInterceptor",
    "UnaryUnaryMultiCallable",
]

if TYPE_CHECKING:
    UnaryUnaryClientInterceptor = grpc.UnaryUnaryClientInterceptor[Any, Any]
    UnaryStreamClientInterceptor = grpc.UnaryStreamClientInterceptor[Any, Any]
    StreamUnaryClientInterceptor = grpc.StreamUnaryClientInterceptor[Any, Any]
    StreamStreamClientInterceptor = grpc.StreamStreamClientInterceptor[Any, Any]
    UnaryUnaryMultiCallable = grpc.UnaryUnaryMultiCallable[Any, Any]
    UnaryStreamMultiCallable = grpc.UnaryStreamMultiCallable[Any, Any]
    StreamUnaryMultiCallable = grpc.StreamUnaryMultiCallable[Any, Any]
    StreamStreamMultiCallable = grpc.StreamStreamMultiCallable[Any, Any]
    ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    AioUnaryUnaryClientInterceptor = aio.UnaryUnaryClientInterceptor[Any, Any]
    AioUnaryStreamClientInterceptor = aio.UnaryStreamClientInterceptor[Any, Any]
    AioStreamUnaryClientInterceptor = aio.StreamUnaryClientInterceptor[Any, Any]
    AioStreamStreamClientInterceptor = aio.StreamStreamClientInterceptor[Any, Any]
    AioUnaryUnaryMultiCallable = aio.UnaryUnaryMultiCallable[Any, Any]
    AioUnaryStreamMultiCallable = aio.UnaryStreamMultiCallable[Any, Any]
    AioStreamUnaryMultiCallable = aio.StreamUnaryMultiCallable[Any, Any]
    AioStreamStreamMultiCallable = aio.StreamStreamMultiCallable[Any, Any]
    AioUnaryStreamCall = aio.UnaryStreamCall[Any, Any]
    AioStreamUnaryCall = aio.StreamUnaryCall[Any, Any]
    AioStreamStreamCall = aio.StreamStreamCall[Any, Any]
    AioServerInterceptor = aio.ServerInterceptor[Any, Any]
else:  # the same names at run time: grpc's (an ``Aio`` name: grpc.aio's) classes themselves
    globals().update(
        {name: getattr(aio if name.startswith("Aio") else grpc, name.removeprefix("Aio")) for name in __all__}
    )


def passthrough(held: str, api: str, result: Callable[[Any], Any] | None = None, *, awaited: bool = False) -> Any:
    """Methods that pass their call on to the object a wrapper holds in ``self.<held>``.

    For a class body::

        initial_metadata = code = details = passthrough("_call", "grpc.Call")  # self._call.code(...), ...
        cancelled = done = passthrough("_call", "grpc.Future", bool)

    Each name it is assigned to becomes a method of that name, documented as ``See <api>.<name>``, that returns
    what the held object's method returns, converted by ``result`` when given (``bool`` where grpc promises one);
    ``awaited``: an ``async`` method that awaits it. Users call these; hoptel's per-RPC path never does.
    """
    return _Passthrough(held, api, result, awaited)


class _Passthrough:
    """What :func:`passthrough` returns: it puts one method in the class per name it was assigned to."""

    __slots__ = ("_api", "_awaited", "_held", "_result")

    def __init__(self, held: str, api: str, result: Callable[[Any], Any] | None, awaited: bool) -> None:
        self._held = held
        self._api = api
        self._result = result
        self._awaited = awaited

    def __set_name__(self, owner: type, name: str) -> None:
        target = operator.attrgetter(f"{self._held}.{name}")  # self._call.code, read when called
        result = self._result
        method: Callable[..., Any]
        if self._awaited:

            async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
                answer = await target(self)(*args, **kwargs)
                return answer if result is None else result(answer)

        else:

            def method(self: Any, *args: Any, **kwargs: Any) -> Any:
                answer = target(self)(*args, **kwargs)
                return answer if result is None else result(answer)

        method.__name__ = name
        method.__module__ = owner.__module__
        method.__qualname__ = f"{owner.__qualname__}.{name}"
        method.__doc__ = f"See ``{self._api}.{name}``."
        setattr(owner, name, method)
