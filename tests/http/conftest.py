"""Fixtures for the HTTP integration tests: uvicorn servers on loopback, a refused port, the app's observations."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest
from httptest_support import Observed, Serve
from support.uvicorn_server import run_uvicorn


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start uvicorn servers for the test (``serve(app) -> base URL``); all are stopped afterwards."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(run_uvicorn(app))


@pytest.fixture
def refused_url() -> str:
    """A loopback URL whose port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/nothing"


@pytest.fixture
def observed() -> Iterator[Observed]:
    """What the test app's handlers saw; the streaming gate is opened at teardown so no handler is left waiting."""
    seen = Observed()
    yield seen
    seen.gate.set()
