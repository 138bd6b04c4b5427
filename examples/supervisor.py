"""Start the demo's services as child processes, wait until they are ready, and always take them down again.

Each service runs in its own session (so its own process group): Ctrl-C in the terminal reaches only the demo,
which then stops the services in order, and stopping a service signals its whole group (SIGTERM, then SIGKILL
after a grace period). Each service's standard input is a pipe held by the demo; the services exit when it
closes (``--watch-stdin``), so even a demo killed with SIGKILL leaves nothing running.

A service's stdout and stderr (its JSON logs) go to ``<log dir>/<service>.log``; the readiness line a service
prints (see ``examples.services.runtime``) tells the supervisor its address and metrics URL.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from examples.services.runtime import READY_PREFIX

__all__ = ["DemoError", "Ready", "ServiceProcess", "Supervisor", "free_port", "taken_ports"]

_TAIL_LINES = 15
_POLL_S = 0.05
_REPO_ROOT = Path(__file__).resolve().parent.parent


class DemoError(Exception):
    """The demo cannot go on: a port is taken, a service died or never became ready. The message says which."""


@dataclass(frozen=True)
class Ready:
    """What a service announced once it accepted connections."""

    address: str
    metrics_url: str | None


def taken_ports(host: str, ports: Mapping[str, int]) -> list[str]:
    """Describe each of ``ports`` (purpose -> port) that cannot be bound on ``host`` right now.

    Binds the way the services will (``SO_REUSEADDR``, like Python's HTTP servers), so a port only lingering
    in TIME_WAIT is not reported, while one another process listens on is. A free port can still be taken
    between this check and the service's start; the service then exits and the demo reports that instead.
    """
    problems: list[str] = []
    for purpose, port in ports.items():
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as error:
                problems.append(f"{host}:{port} ({purpose}): {error.strerror or error}")
    return problems


def free_port(host: str) -> int:
    """A port on ``host`` that nothing listens on right now (bound, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


class ServiceProcess:
    """One service: a child process in its own session, its output copied to a log file.

    Args:
        name: The service name, for messages.
        argv: The command line.
        env: The complete environment.
        log_path: Where its stdout and stderr go.
    """

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._ready: Ready | None = None
        self._ready_event = threading.Event()
        self._stopping = False
        self._log = log_path.open("w", encoding="utf-8")
        try:
            self.process = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=_REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: our Ctrl-C is not theirs; killpg reaches all of it
                text=True,
                encoding="utf-8",
                errors="backslashreplace",
            )
        except BaseException:
            self._log.close()
            raise
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]  # not None: stdout=PIPE above
        self._reader = threading.Thread(target=self._read, args=(stdout,), name=f"{name}-output", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The service's process id (also its process group id)."""
        return self.process.pid

    @property
    def ready(self) -> Ready | None:
        """What the service announced, once it did."""
        return self._ready

    def _read(self, stdout: IO[str]) -> None:
        """Copy the service's output to its log and watch for the readiness line (on the reader thread).

        This loop must outlive anything the service prints: if it stopped reading, the pipe would fill and the
        service would block on its next log line.
        """
        for line in stdout:
            if not self._log.closed:  # closed only by stop(), after the process has exited
                self._log.write(line)
                self._log.flush()
            self._tail.append(line.rstrip("\n"))
            at = line.find(READY_PREFIX)
            if at >= 0 and self._ready is None:
                self._ready = _parse_ready(line[at + len(READY_PREFIX) :])
                if self._ready is not None:
                    self._ready_event.set()

    def exited(self) -> int | None:
        """The exit status once the process ended on its own (not through ``stop()``), else ``None``."""
        code = self.process.poll()
        return None if self._stopping else code

    def failure(self, what: str) -> DemoError:
        """A ``DemoError`` saying ``what`` happened, with the last lines the service wrote."""
        self._reader.join(timeout=1.0)  # let the last lines arrive
        tail = "\n".join(f"    {line}" for line in self._tail) or "    (no output)"
        return DemoError(f"{self.name} {what}; its last output (full log: {self.log_path}):\n{tail}")

    def wait_ready(self, deadline: float, others: Iterable[ServiceProcess] = ()) -> Ready:
        """Block until the service announced itself, watching ``others`` for an early death too.

        Raises:
            DemoError: this or another service exited, or ``deadline`` (a ``time.monotonic()`` value) passed.
        """
        while not self._ready_event.wait(_POLL_S):
            for process in (self, *others):
                code = process.exited()
                if code is not None:
                    raise process.failure(f"exited with status {code} before the demo finished starting")
            if time.monotonic() > deadline:
                raise self.failure("did not report ready in time")
        ready = self._ready
        if ready is None:  # pragma: no cover - the event is set only after _ready
            raise self.failure("reported ready without details")
        return ready

    def stop(self, grace_s: float) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace_s`` seconds; closes the log. Idempotent."""
        self._stopping = True
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()  # --watch-stdin: end of input is a stop request too
        if self.process.poll() is None:
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                print(f"demo: {self.name} ignored SIGTERM for {grace_s} s, killing it", file=sys.stderr)
                _signal_group(self.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=2.0)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


def _parse_ready(text: str) -> Ready | None:
    """The readiness details: the JSON object at the start of ``text`` (anything after it is ignored)."""
    try:
        details, _ = json.JSONDecoder().raw_decode(text)
        return Ready(address=str(details["address"]), metrics_url=details.get("metrics_url"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


class Supervisor:
    """Owns every service the demo started; leaving the ``with`` block stops them all, newest first.

    Args:
        log_dir: Where each service's log file goes.
        grace_s: How long a service gets to exit after SIGTERM.
    """

    def __init__(self, log_dir: Path, grace_s: float = 5.0) -> None:
        self.log_dir = log_dir
        self.grace_s = grace_s
        self.services: list[ServiceProcess] = []

    def start(self, name: str, module: str, args: list[str], env: Mapping[str, str]) -> ServiceProcess:
        """Start ``python -m module --watch-stdin args...`` as service ``name``."""
        argv = [sys.executable, "-m", module, "--watch-stdin", *args]
        service = ServiceProcess(name, argv, env, self.log_dir / f"{name}.log")
        self.services.append(service)
        print(f"started {name} (pid {service.pid}), log: {service.log_path}", flush=True)
        return service

    def wait_ready(self, service: ServiceProcess, deadline: float) -> Ready:
        """Wait for ``service`` to be ready while watching every other service; see ``ServiceProcess``."""
        return service.wait_ready(deadline, [s for s in self.services if s is not service])

    def check_alive(self) -> None:
        """Raise ``DemoError`` if any service has exited on its own."""
        for service in self.services:
            code = service.exited()
            if code is not None:
                raise service.failure(f"exited unexpectedly with status {code}")

    def stop_all(self) -> None:
        """Stop every service, the most recently started first (the gateway before what it calls)."""
        for service in reversed(self.services):
            service.stop(self.grace_s)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Nothing may interrupt the cleanup half-way and leave a service behind: hold Ctrl-C and SIGTERM off
        # while stopping (it is bounded: grace_s per service, then SIGKILL).
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
