"""Helpers for the server logging tests: a server started as users start it, its stdout and stderr apart.

Waits poll a condition with a generous bound: the machine may be busy.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

HERE = Path(__file__).parent
WAIT_S = 60.0
POLL_S = 0.1

T = TypeVar("T")


def wait_for(read: Callable[[], T | None], what: str, details: Callable[[], str] = str) -> T:
    """Call ``read`` until it returns something other than None; fail after ``WAIT_S`` seconds."""
    deadline = time.monotonic() + WAIT_S
    while True:
        with contextlib.suppress(httpx.TransportError, OSError):
            value = read()
            if value is not None:
                return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {WAIT_S:.0f}s waiting for {what}\n{details()}")
        time.sleep(POLL_S)


@dataclass
class LoggedServer:
    """A server process in a session of its own; what it writes to stdout and stderr goes to two files."""

    args: list[str]
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    url: str

    @classmethod
    def start(cls, args: list[str], env: dict[str, str], port: int, directory: Path) -> LoggedServer:
        """Start ``args`` in ``tests/production`` with ``env``; it should listen on 127.0.0.1:``port``."""
        stdout_path, stderr_path = directory / "stdout.txt", directory / "stderr.txt"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                args, env=env, cwd=HERE, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )
        return cls(args, process, stdout_path, stderr_path, f"http://127.0.0.1:{port}")

    def stdout(self) -> str:
        """Everything written to stdout so far."""
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        """Everything written to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def details(self) -> str:
        """The command and its output so far, for failure messages."""
        return f"--- {' '.join(self.args)} ---\nstdout:\n{self.stdout()[-6000:]}\nstderr:\n{self.stderr()[-6000:]}"

    def json_lines(self) -> list[dict[str, Any]]:
        """The stdout lines that are JSON objects."""
        lines = []
        for line in self.stdout().splitlines():
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    lines.append(value)
        return lines

    def wait_ready(self) -> None:
        """Wait until the server answers ``/ready``."""

        def read() -> bool | None:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}\n{self.details()}")
            return httpx.get(f"{self.url}/ready", timeout=5.0).status_code == 200 or None

        wait_for(read, f"{self.url} to answer", self.details)

    def wait_line(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Wait for a JSON line on stdout that matches ``predicate``."""
        return wait_for(lambda: next((line for line in self.json_lines() if predicate(line)), None), what, self.details)

    def stop(self) -> None:
        """SIGTERM the process group, wait (bounded), then SIGKILL whatever is left, and reap."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30.0)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10.0)
