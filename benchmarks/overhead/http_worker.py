"""W4: a sync httpx client calling a Starlette app under uvicorn (h11, asyncio loop, no access log).

The app has one route, ``GET /echo/{name}``, answering the name as a small plain-text body; the route template
gives the instrumentations something to name their server spans with.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from benchmarks.overhead.protocol import Command, ProtocolWriter, cpu_seconds, serve_commands, snapshot
from benchmarks.overhead.stacks import Stack

__all__ = ["build_app", "run_http_client", "run_http_server"]

_PATH = "/echo/bench"


async def _echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.path_params["name"])


def build_app(stack: Stack) -> Any:
    """The Starlette app, wrapped in the variant's ASGI middleware."""
    return stack.wrap_asgi(Starlette(routes=[Route("/echo/{name}", _echo)]))


def run_http_server(writer: ProtocolWriter, stack: Stack) -> None:
    """Serve the app under uvicorn on a loopback ephemeral port until the launcher says ``quit``."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only for sockets whose proto says
    # TCP (as those uvicorn binds itself do). Without it, Nagle + delayed ACK stall every response ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        build_app(stack),
        http="h11",
        loop="asyncio",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)

    def commands() -> None:
        try:
            serve_commands(writer, {"snap": lambda _: snapshot(stack.flush)})
        finally:
            server.should_exit = True

    # uvicorn binds nothing itself (it gets the socket); announce once it is serving.
    def announce() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.01)
        writer.send({"event": "ready", "port": port})
        commands()

    thread = threading.Thread(target=announce, name="bench-commands", daemon=True)
    thread.start()
    try:
        server.run(sockets=[sock])
    finally:
        stack.shutdown()


def run_http_client(writer: ProtocolWriter, stack: Stack, target: str) -> None:
    """Send ``GET /echo/bench`` when told: ``run`` performs ``ops`` requests over one keep-alive connection."""
    client = stack.httpx_client()
    url = f"http://{target}{_PATH}"

    def run(command: Command) -> dict[str, Any]:
        ops = int(command["ops"])
        stack.flush()
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        for _ in range(ops):
            client.get(url).raise_for_status()
        stack.flush()
        return {"cpu": cpu_seconds() - cpu0, "wall": time.perf_counter() - wall0, "ops": ops}

    writer.send({"event": "ready"})
    try:
        serve_commands(writer, {"run": run, "snap": lambda _: snapshot(stack.flush)})
    finally:
        client.close()
        stack.shutdown()
