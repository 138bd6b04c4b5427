"""The launcher's side of the worker protocol: start a worker, send it commands, read its replies.

Each worker's stdout is the protocol (read line by line on a daemon thread, so every wait has a timeout) and its
stderr goes to a temporary file that is quoted when the worker fails.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["REPO_ROOT", "Worker", "WorkerError", "worker_command"]

REPO_ROOT = Path(__file__).resolve().parents[2]
_REPLY_TIMEOUT_S = 300.0
_STDERR_TAIL = 4000


class WorkerError(RuntimeError):
    """A worker died, answered nonsense, or did not answer in time; the message quotes its stderr."""


def worker_command(role: str, workload: str, variant: str, *extra: str) -> list[str]:
    """The command line that starts one worker."""
    return [sys.executable, "-m", "benchmarks.overhead.worker", role, workload, variant, *extra]


class Worker:
    """One running worker process.

    Args:
        name: how messages refer to it (``W1/hoptel/server``).
        argv: its command line (see ``worker_command``).
        env: its complete environment.
    """

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker; close()
        self._process = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=dict(env),
            cwd=REPO_ROOT,
            text=True,
            bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._process.pid

    def _read(self) -> None:
        stdout = self._process.stdout
        if stdout is None:  # pragma: no cover - Popen(stdout=PIPE) always sets it
            raise WorkerError(f"{self.name}: no stdout pipe")
        for line in stdout:
            self._lines.put(line)
        self._lines.put(None)

    def stderr_tail(self) -> str:
        """The end of what the worker wrote to stderr."""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL))
        return self._stderr.read().decode("utf-8", "replace")

    def receive(self, timeout: float = _REPLY_TIMEOUT_S) -> dict[str, Any]:
        """The next protocol message.

        Raises:
            WorkerError: the worker exited or stayed silent for ``timeout`` seconds.
        """
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise WorkerError(f"{self.name}: no reply in {timeout:.0f} s\n{self.stderr_tail()}") from None
        if line is None:
            code = self._process.wait()
            raise WorkerError(f"{self.name}: exited with status {code}\n{self.stderr_tail()}")
        message: dict[str, Any] = json.loads(line)
        return message

    def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one command and return the worker's reply."""
        self.send(cmd, **fields)
        return self.receive()

    def send(self, cmd: str, **fields: Any) -> None:
        """Send one command without waiting for a reply."""
        stdin = self._process.stdin
        if stdin is None:  # pragma: no cover - Popen(stdin=PIPE) always sets it
            raise WorkerError(f"{self.name}: no stdin pipe")
        try:
            stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
            stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"{self.name}: gone\n{self.stderr_tail()}") from None

    def close(self, timeout: float = 20.0) -> None:
        """Ask the worker to quit; kill it (this process only) if it does not exit in time."""
        if self._process.poll() is None:
            try:
                self.send("quit")
                if self._process.stdin is not None:
                    self._process.stdin.close()
                self._process.wait(timeout=timeout)
            except (WorkerError, subprocess.TimeoutExpired, OSError):
                self._process.kill()
                self._process.wait()
        self._stderr.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
