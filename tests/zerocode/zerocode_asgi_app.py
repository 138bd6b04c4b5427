"""ASGI applications that know nothing of hoptel: a Starlette and a FastAPI app, served by uvicorn, called once.

Run it under ``opentelemetry-instrument`` (the entry-point tests do). It prints ``done`` when both requests worked.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route


async def item(request: Request) -> Response:
    return PlainTextResponse(request.path_params["item_id"])


def serve_and_get(app: object, path: str) -> int:
    """Serve ``app`` on an ephemeral loopback port, GET ``path`` once, stop; the response status."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.01)
    try:
        with httpx.Client(timeout=10) as client:
            return client.get(f"http://127.0.0.1:{sock.getsockname()[1]}{path}").status_code
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def main() -> None:
    """Serve and call each app."""
    starlette_app = Starlette(routes=[Route("/items/{item_id}", item)])
    fastapi_app = FastAPI()

    @fastapi_app.get("/things/{thing_id}")
    def thing(thing_id: str) -> dict[str, str]:
        return {"thing": thing_id}

    assert serve_and_get(starlette_app, "/items/1") == 200
    assert serve_and_get(fastapi_app, "/things/2") == 200
    print("done", flush=True)


if __name__ == "__main__":
    main()
