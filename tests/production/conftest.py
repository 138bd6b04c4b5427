"""Fixtures for the production tests: real servers started as subprocesses, a loopback HTTP target.

Every server runs in a session of its own, so teardown kills the whole process group (master and workers) with
SIGKILL, whatever the test did.
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.ports import free_port
from workers_support import HERE, Server

PUBLISH_MS = "200"


@pytest.fixture
def worker_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a server under test: its own service name, fast publishing, no exporters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOPTEL_"))}
    env.update(
        {
            "OTEL_SERVICE_NAME": f"workers-{uuid.uuid4().hex[:8]}",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "HOPTEL_METRICS_PUBLISH_INTERVAL": PUBLISH_MS,
            "HOPTEL_LOG": "warning",
            "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``start_server(args, env, port)``: start a server in its own session; every one is killed at teardown."""
    started: list[Server] = []

    def start(args: list[str], env: dict[str, str], port: int = 0) -> Server:
        metrics_port = free_port()
        env = {**env, "HOPTEL_METRICS_ADDR": f"127.0.0.1:{metrics_port}"}
        log = tmp_path / f"server-{len(started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                args, env=env, cwd=HERE, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True
            )
        server = Server(args, process, log, f"http://127.0.0.1:{metrics_port}/metrics", port, metrics_port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def http_target() -> Iterator[str]:
    """A loopback HTTP server answering every GET with 200 ``ok``: what the WSGI app's handler calls."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10.0)
