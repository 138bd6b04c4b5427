"""Fixtures for the HTTP integration tests: uvicorn servers on loopback, the app's observations.

The ``refused_url`` fixture comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
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
def observed() -> Iterator[Observed]:
    """What the test app's handlers saw; the streaming gate is opened at teardown so no handler is left waiting."""
    seen = Observed()
    yield seen
    seen.gate.set()
