"""Helpers for the worker tests: servers started as subprocesses, scrapes of one metrics address, waits.

Waits poll a condition with a generous bound: the machine may be busy.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Sample

HERE = Path(__file__).parent
WAIT_S = 60.0
POLL_S = 0.2
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

T = TypeVar("T")


def wait_for(read: Callable[[], T | None], what: str, timeout: float = WAIT_S, details: Callable[[], str] = str) -> T:
    """Call ``read`` until it returns something other than None; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = read()
        except (httpx.TransportError, OSError) as exc:
            value, last_error = None, exc
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})\n{details()}")
        time.sleep(POLL_S)


@dataclass
class Scrape:
    """One scrape of a metrics address: every sample, and the raw body."""

    body: str
    samples: list[Sample]

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            s.value for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str) -> bool:
        """Whether any sample is called ``name``."""
        return any(s.name == name for s in self.samples)

    def exemplar_trace_ids(self, name: str) -> set[str]:
        """The ``trace_id`` of every exemplar on the samples called ``name``."""
        return {s.exemplar.labels["trace_id"] for s in self.samples if s.name == name and s.exemplar is not None}


def scrape(url: str, openmetrics: bool = False) -> Scrape:
    """GET ``url`` (in the text format, or OpenMetrics) and parse it."""
    headers = {"Accept": OPENMETRICS} if openmetrics else {}
    response = httpx.get(url, headers=headers, timeout=10.0)
    response.raise_for_status()
    parse = parse_openmetrics if openmetrics else parse_text
    samples = [sample for family in parse(response.text) for sample in family.samples]
    return Scrape(response.text, samples)


def listening_pids(port: int) -> set[int]:
    """The processes holding a socket that listens on TCP ``port`` (read from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            descriptors = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                link = os.readlink(f"/proc/{entry}/fd/{descriptor}")
            except OSError:  # closed in the meantime
                continue
            if link in inodes:
                pids.add(int(entry))
    return pids


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in {"Z", "X"}
    except (OSError, IndexError):
        return False


@dataclass
class Server:
    """A server started as users start it; its output goes to ``log``."""

    args: list[str]
    process: subprocess.Popen[bytes]
    log: Path
    metrics_url: str
    port: int
    metrics_port: int
    seen_pids: set[int] = field(default_factory=set)

    def output(self, lines_kept: int = 60) -> str:
        """The server's output so far, its last ``lines_kept`` lines (for failure messages)."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()[-lines_kept:]
        except OSError:
            lines = []
        return f"--- {' '.join(self.args)} ---\n" + "\n".join(lines)

    def wait_accepting(self) -> None:
        """Wait (bounded) until the server's port accepts connections (workers write state files before it listens)."""

        def accepts() -> bool | None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
            return None

        wait_for(accepts, f"the server accepting connections on port {self.port}", details=self.output)

    def serving_pid(self) -> int:
        """The one process that holds the metrics address, waiting (bounded) until exactly one does."""

        def read() -> int | None:
            pids = listening_pids(self.metrics_port)
            return next(iter(pids)) if len(pids) == 1 else None

        return wait_for(read, f"one process listening on the metrics port {self.metrics_port}", details=self.output)

    def scrape(self, openmetrics: bool = False) -> Scrape:
        """Scrape the metrics address; a scrape left unanswered prints the server's output (shown on failure)."""
        try:
            return scrape(self.metrics_url, openmetrics)
        except httpx.TimeoutException:
            held_by = sorted(listening_pids(self.metrics_port))
            print(f"scrape of {self.metrics_url} timed out; held by {held_by}\n{self.output(200)}", file=sys.stderr)
            raise

    def wait_total(self, name: str, expected: float, **labels: str) -> Scrape:
        """Scrape until ``name`` (summed over series matching ``labels``) equals ``expected``; fail if it passes it."""

        def read() -> Scrape | None:
            result = self.scrape()
            value = result.total(name, **labels)
            assert value <= expected, f"{name} is {value}, more than the {expected} requests sent"
            return result if value == expected else None

        return wait_for(read, f"{name} == {expected}", details=self.output)

    def kill(self) -> None:
        """SIGKILL the whole process group (even when the master is gone, its workers may not be) and reap."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10.0)
