"""gRPC server entrypoints for the signal tests, run as ``python signals_grpc_app.py sync|aio``.

``sync`` is the plain entrypoint the signal handling is for: ``hoptel.setup()``, ``grpc.server`` with hoptel's
server interceptor, ``server.wait_for_termination()``. ``aio`` is the same with ``grpc.aio`` under
``asyncio.run``. Each RPC logs one line (``handled <request>``). Once serving, the process prints
``READY <port> <signals>``, where ``<signals>`` names the signals hoptel's handler holds (``none``).

Environment:
    SIGNALS_APP_HANDLER=1: before ``setup()`` the app installs its own SIGTERM handler (sync: ``signal.signal``;
        aio: ``loop.add_signal_handler``), which prints ``APP-HANDLER`` and stops the server gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from concurrent import futures
from types import FrameType
from typing import Any

import grpc

import hoptel
from hoptel.shutdown_signals import installed_signals

SERVICE = "hoptel.signals.Echo"
METHOD = f"/{SERVICE}/Unary"

_log = logging.getLogger("signals.app")


def _ready(port: int) -> None:
    names = ",".join(signum.name for signum in installed_signals()) or "none"
    print(f"READY {port} {names}", flush=True)


def _sync_unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    _log.info("handled %s", request.decode())
    return request


def run_sync() -> None:
    """The plain sync entrypoint, ending in ``wait_for_termination()``."""
    servers: list[grpc.Server] = []
    if os.environ.get("SIGNALS_APP_HANDLER"):

        def app_handler(signum: int, frame: FrameType | None) -> None:
            print("APP-HANDLER", signum, flush=True)
            servers[0].stop(None)

        signal.signal(signal.SIGTERM, app_handler)
    hoptel.setup(service_name="signals-grpc-sync")
    handler = grpc.method_handlers_generic_handler(SERVICE, {"Unary": grpc.unary_unary_rpc_method_handler(_sync_unary)})
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), handlers=[handler], interceptors=[hoptel.server_interceptor()]
    )
    servers.append(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    _ready(port)
    server.wait_for_termination()
    print("TERMINATED", flush=True)


async def _aio_unary(request: bytes, context: Any) -> bytes:
    _log.info("handled %s", request.decode())
    return request


async def _serve_aio() -> None:
    servers: list[grpc.aio.Server] = []
    if os.environ.get("SIGNALS_APP_HANDLER"):

        def app_handler() -> None:
            print("APP-HANDLER", int(signal.SIGTERM), flush=True)
            asyncio.get_running_loop().create_task(servers[0].stop(None))

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, app_handler)
    hoptel.setup(service_name="signals-grpc-aio")
    handler = grpc.method_handlers_generic_handler(SERVICE, {"Unary": grpc.unary_unary_rpc_method_handler(_aio_unary)})
    server = grpc.aio.server(handlers=[handler], interceptors=[hoptel.aio_server_interceptor()])
    servers.append(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    _ready(port)
    await server.wait_for_termination()
    print("TERMINATED", flush=True)


def main() -> None:
    """Run the entrypoint named by the first argument (``sync`` or ``aio``)."""
    # A plain process started from a shell, whatever the test runner left: SIGTERM has its default disposition and
    # SIGINT Python's KeyboardInterrupt handler (Python leaves an ignored SIGINT ignored, as in background jobs).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.argv[1:] == ["aio"]:
        asyncio.run(_serve_aio())
    else:
        run_sync()


if __name__ == "__main__":
    main()
