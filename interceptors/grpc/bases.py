"""grpc's abstract classes that hoptel's gRPC clients and servers subclass: generic for mypy, plain at run time.

grpc-stubs makes the interceptor, multicallable and call classes generic in the request and response types,
while grpcio's own classes cannot be subscripted; hoptel records messages of any type, so each is ``[Any, Any]``.
"""

from __future__ import annotations

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
