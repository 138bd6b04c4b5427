"""Fixtures for the log pipeline tests: pipelines that are always shut down, streams, and subprocess scripts.

The ``receiver`` fixture (a started ``OTLPReceiver``) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hoptel.logs import LogPipeline

PipelineFactory = Callable[..., LogPipeline]
ScriptRunner = Callable[..., subprocess.CompletedProcess[str]]

SUBPROCESS_TIMEOUT_S = 120.0  # a hang fails the test instead of the whole run


@pytest.fixture
def start_pipeline() -> Iterator[PipelineFactory]:
    """Start LogPipelines writing to a StringIO by default; all are shut down after the test."""
    root = logging.getLogger()
    level = root.level
    started: list[LogPipeline] = []

    def factory(**kwargs: Any) -> LogPipeline:
        kwargs.setdefault("stream", io.StringIO())
        kwargs.setdefault("service_name", "orders")
        pipeline = LogPipeline.start(**kwargs)
        started.append(pipeline)
        return pipeline

    yield factory
    for pipeline in reversed(started):
        pipeline.shutdown(timeout=5.0)
        if pipeline.handler in root.handlers:  # a failed shutdown must not leak into later tests
            root.removeHandler(pipeline.handler)
    root.setLevel(level)


@pytest.fixture
def run_script(tmp_path: Path) -> ScriptRunner:
    """Run a Python script in a fresh interpreter; returns the finished process (a non-zero exit fails)."""

    def run(source: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "script.py"
        path.write_text(textwrap.dedent(source))
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("GRPC_", "HOPTEL_", "OTEL_"))}
        environment.update(env or {})
        done = subprocess.run(
            [sys.executable, str(path), *args],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
            env=environment,
            check=False,
        )
        assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        return done

    return run
