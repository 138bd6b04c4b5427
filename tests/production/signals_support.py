"""Helpers for the signal tests: an app started as a subprocess in its own session, always killed at the end."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from hoptel.receiver import OTLPReceiver

__all__ = [
    "HERE",
    "WAIT_S",
    "AppProcess",
    "app_env",
    "grpc_app",
    "started",
    "wait_for",
]

HERE = Path(__file__).resolve().parent
WAIT_S = 60.0
"""Generous: two shared cores, and each process imports grpc and the OTel SDK."""
LONG_DELAY_MS = "600000"
"""The batch delays of the apps under test: nothing is exported before a flush."""

T = TypeVar("T")


def wait_for(read: Callable[[], T | None], what: str, timeout: float = WAIT_S) -> T:
    """Poll ``read`` until it returns something other than None (or False); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def app_env(receiver: OTLPReceiver, **extra: str) -> dict[str, str]:
    """The environment of an app under test: export spans and OTLP logs to ``receiver``, only on a flush."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOPTEL_", "SIGNALS_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_BSP_SCHEDULE_DELAY": LONG_DELAY_MS,
            "OTEL_BLRP_SCHEDULE_DELAY": LONG_DELAY_MS,
            "HOPTEL_METRICS_ADDR": "off",
            "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class AppProcess:
    """A started app: its process, and its stdout and stderr collected in one file."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log

    def output(self) -> str:
        """Everything the app wrote so far."""
        return self.log.read_text(errors="replace")

    def ready(self) -> tuple[int, str]:
        """Wait for the app's ``READY <port> <signals>`` line; returns the port and the signals field."""

        def read() -> tuple[int, str] | None:
            if self.process.poll() is not None:
                status = self.process.returncode
                raise AssertionError(f"the app exited ({status}) before it was ready:\n{self.output()}")
            match = re.search(r"^READY (\d+) (\S+)$", self.output(), re.MULTILINE)
            return None if match is None else (int(match.group(1)), match.group(2))

        return wait_for(read, "the app to print READY")

    def signal(self, signum: int) -> float:
        """Send ``signum``; returns when it was sent (``time.monotonic()``)."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        return sent

    def wait(self, timeout: float = WAIT_S) -> int:
        """Wait for the exit; returns the status as subprocess reports it (-N: killed by signal N)."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the app did not exit within {timeout:.0f} s:\n{self.output()}") from None

    def lines_with(self, text: str) -> list[str]:
        """The output lines containing ``text``."""
        return [line for line in self.output().splitlines() if text in line]


@contextlib.contextmanager
def started(args: list[str], env: dict[str, str], log: Path) -> Iterator[AppProcess]:
    """Start ``args`` in a session of its own; whatever happens, the session is SIGKILLed at the end."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            args, env=env, cwd=HERE, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True
        )
    try:
        yield AppProcess(process, log)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(WAIT_S)


def grpc_app(kind: str, env: dict[str, str], log: Path) -> contextlib.AbstractContextManager[AppProcess]:
    """Start ``signals_grpc_app.py`` (``kind``: ``sync`` or ``aio``)."""
    return started([sys.executable, str(HERE / "signals_grpc_app.py"), kind], env, log)
