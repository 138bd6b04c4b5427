"""uvicorn serving an ASGI app in a background thread, on a pre-bound loopback (or Unix) socket."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

__all__ = ["STARTUP_TIMEOUT_S", "ASGIApp", "run_uvicorn"]

ASGIApp = Callable[..., Any]
STARTUP_TIMEOUT_S = 10.0
# Quiet and bounded: no lifespan, the process' logging left alone, a stuck connection ends the shutdown after 2 s.
_DEFAULTS: dict[str, Any] = {
    "lifespan": "off",
    "log_config": None,
    "log_level": "warning",
    "access_log": False,
    "timeout_graceful_shutdown": 2,
}


@contextlib.contextmanager
def run_uvicorn(app: ASGIApp, *, uds: str | None = None, **config: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread; yield the base URL once it has started.

    The socket is 127.0.0.1 on an ephemeral port, or the Unix socket ``uds`` (then the URL is ``http://uds``).
    Keyword arguments override the ``uvicorn.Config`` defaults above (e.g. ``lifespan="on"``,
    ``h11_max_incomplete_event_size``).
    """
    if uds is None:
        # proto=IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it uvicorn's separate header and body writes meet Nagle and delayed ACKs (~40 ms per request).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        url = f"http://127.0.0.1:{port}"
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(uds)
        port = 0
        url = "http://uds"
    server = uvicorn.Server(uvicorn.Config(app, **{**_DEFAULTS, **config}))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:  # bounded: the deadline, or the thread dying
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        yield url
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S)
        sock.close()
