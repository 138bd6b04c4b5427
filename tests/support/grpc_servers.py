"""Real gRPC servers (sync and aio) on an ephemeral 127.0.0.1 port, stopped when the block ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

__all__ = ["STOP_TIMEOUT_S", "aio_grpc_server", "sync_grpc_server"]

STOP_TIMEOUT_S = 10.0


@contextlib.contextmanager
def sync_grpc_server(*handlers: grpc.GenericRpcHandler[Any, Any], workers: int = 8, **server: Any) -> Iterator[str]:
    """Serve ``handlers`` with ``grpc.server(pool, **server)`` on a ``workers``-thread pool; yield the target.

    ``server`` goes to ``grpc.server`` as given (``interceptors=``, ``options=``), so a test of what
    ``grpc.server`` does without them passes none.
    """
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        grpc_server = grpc.server(pool, **server)
        grpc_server.add_generic_rpc_handlers(list(handlers))
        port = grpc_server.add_insecure_port("127.0.0.1:0")
        grpc_server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            grpc_server.stop(None).wait(STOP_TIMEOUT_S)
    finally:
        pool.shutdown(wait=True)


@contextlib.asynccontextmanager
async def aio_grpc_server(*handlers: grpc.GenericRpcHandler[Any, Any], **server: Any) -> AsyncIterator[str]:
    """Serve ``handlers`` with ``grpc.aio.server(**server)`` on the running loop; yield the target."""
    grpc_server = grpc.aio.server(**server)
    grpc_server.add_generic_rpc_handlers(list(handlers))
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await grpc_server.stop(None)
