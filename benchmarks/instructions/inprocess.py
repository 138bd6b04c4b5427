"""One workload, client and server in ONE process, for counting under callgrind.

``python -m benchmarks.instructions.inprocess WORKLOAD VARIANT N WARMUP`` builds the variant's stack (the same
``benchmarks.overhead.stacks`` the CPU benchmark uses), starts the server and the client of the workload in this
process, warms up, then runs three phases, each ended by a ``ready`` line on stdout, after which it waits for a
line on stdin (the launcher dumps callgrind's counts in between, while nothing is in flight):

    warm-up, flush  -> ready      (dump 1: start-up, imports, warm-up)
    N ops, flush    -> ready      (dump 2)
    2N ops, flush   -> ready      (dump 3)

Both counted phases seed ``random`` first (trace and span ids, hence which traces a ratio sampler keeps, repeat from
one run to the next, and the first N operations of the 2N phase repeat the N phase's). The flush runs on a
short-lived helper thread, so exporting what remains queued is counted with the background threads, never on the
request path. Request-path threads call ``label_thread()`` once per operation: the gRPC handler, the sync server's
``_serve`` thread (where grpcio looks the method up and runs server interceptors), the Starlette endpoint on
uvicorn's loop thread; the calling (main) thread is request path anyway.

Differences from the CPU benchmark's workers: W5's handler does not burn its ~1 ms (it is the same for every
variant, so it cancels in *added*, and costs only valgrind time); uvicorn serves without its 0.1 s housekeeping tick
(a timer on the request thread: ``Server.startup``/``shutdown`` without ``main_loop``).
"""

from __future__ import annotations

import asyncio
import random
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
import grpc.aio

from benchmarks.instructions.callgrind import label_thread
from benchmarks.overhead.protocol import ProtocolWriter, take_stdout
from benchmarks.overhead.spec import ECHO_SERVICE, PAYLOAD, UNARY_METHOD, workload
from benchmarks.overhead.stacks import Stack, build_stack

__all__ = ["main"]

_SEED = 16
_POOL_THREADS = 4


class _Phases:
    """The phase protocol: seed, run, flush on a helper thread, say ``ready``, wait for the launcher."""

    def __init__(self, writer: ProtocolWriter, stack: Stack) -> None:
        self._writer = writer
        self._stack = stack

    def flush(self) -> None:
        helper = threading.Thread(target=self._stack.flush, name="bench-flush")
        helper.start()
        helper.join()

    def end(self) -> None:
        self.flush()
        self._writer.send({"event": "ready"})
        if not sys.stdin.readline():
            raise SystemExit("the launcher went away")

    def run(self, ops: Callable[[int], None], n: int, warmup: int) -> None:
        ops(warmup)
        self.end()
        for count in (n, 2 * n):
            random.seed(_SEED)
            ops(count)
            self.end()


class _Labelled(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc-stubs: generic base
    """The echo service; looking a method up labels the thread (grpcio's ``_serve`` thread, sync servers)."""

    def __init__(self, aio: bool) -> None:
        if aio:

            async def unary(request: bytes, context: Any) -> bytes:
                label_thread()
                return request

            handler = grpc.unary_unary_rpc_method_handler(unary)
        else:

            def sync_unary(request: bytes, context: Any) -> bytes:
                label_thread()
                return request

            handler = grpc.unary_unary_rpc_method_handler(sync_unary)
        self._inner = grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Unary": handler})

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        label_thread()
        return self._inner.service(handler_call_details)


def _sync_grpc(phases: _Phases, stack: Stack, n: int, warmup: int) -> None:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_POOL_THREADS),
        handlers=[_Labelled(aio=False)],
        interceptors=stack.grpc_server_interceptors(),
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = stack.grpc_channel(f"127.0.0.1:{port}")
    unary = channel.unary_unary(UNARY_METHOD, request_serializer=None, response_deserializer=None)

    def ops(count: int) -> None:
        for _ in range(count):
            unary(PAYLOAD)

    try:
        phases.run(ops, n, warmup)
    finally:
        channel.close()
        server.stop(grace=None).wait()


def _aio_grpc(phases: _Phases, stack: Stack, n: int, warmup: int) -> None:
    async def main() -> None:
        server = grpc.aio.server(interceptors=stack.aio_server_interceptors())
        server.add_generic_rpc_handlers((_Labelled(aio=True),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = stack.aio_channel(f"127.0.0.1:{port}")
        unary = channel.unary_unary(UNARY_METHOD, request_serializer=None, response_deserializer=None)
        loop = asyncio.get_running_loop()

        def ops(count: int) -> None:
            async def calls() -> None:
                for _ in range(count):
                    await unary(PAYLOAD)

            # The phases block this loop's thread between runs (nothing is in flight then); each run is a task.
            future = asyncio.run_coroutine_threadsafe(calls(), loop)
            future.result()

        try:
            await asyncio.to_thread(phases.run, ops, n, warmup)
        finally:
            await channel.close()
            await server.stop(grace=None)

    asyncio.run(main())


def _http(phases: _Phases, stack: Stack, n: int, warmup: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def echo(request: Request) -> PlainTextResponse:
        label_thread()
        return PlainTextResponse(request.path_params["name"])

    app = stack.wrap_asgi(Starlette(routes=[Route("/echo/{name}", echo)]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY: see http_worker
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, http="h11", loop="asyncio", lifespan="off", access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        config.load()
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        started.set()
        await stop.wait()  # no main_loop: no 0.1 s tick on the request thread
        await server.shutdown(sockets=[sock])

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="uvicorn", daemon=True)
    thread.start()
    if not started.wait(60.0):
        raise RuntimeError("uvicorn did not start")
    client = stack.httpx_client()
    url = f"http://127.0.0.1:{port}/echo/bench"

    def ops(count: int) -> None:
        for _ in range(count):
            client.get(url).raise_for_status()

    try:
        phases.run(ops, n, warmup)
    finally:
        client.close()
        loop.call_soon_threadsafe(stop.set)
        thread.join(30.0)


def main(argv: Sequence[str] | None = None) -> None:
    """Run one workload for one variant through the three phases (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    work, variant, n, warmup = workload(args[0]), args[1], int(args[2]), int(args[3])
    writer = take_stdout()
    stack = build_stack(variant, f"bench-{work.key.lower()}")
    phases = _Phases(writer, stack)
    try:
        if work.kind == "http":
            _http(phases, stack, n, warmup)
        elif work.kind == "grpc_aio":
            _aio_grpc(phases, stack, n, warmup)
        else:
            _sync_grpc(phases, stack, n, warmup)
    finally:
        stack.shutdown()


if __name__ == "__main__":
    main()
