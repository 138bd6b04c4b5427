"""The line protocol between the launcher and its workers, and the one clock the benchmark trusts.

A worker talks JSON, one object per line: it announces itself (``{"event": "ready", ...}``), then answers each
command the launcher writes to its stdin (``{"cmd": "snap"}``, ``{"cmd": "run", "ops": 3000}``, ``{"cmd":
"quit"}``) with one line. The protocol owns the worker's real stdout: everything else the process prints (logs,
gRPC's C core, uvicorn) goes to stderr, so nothing can corrupt a reply.

CPU time comes from the OS: ``getrusage(RUSAGE_SELF)``, user + system, for every thread of the process (gRPC's
C-core threads, the batch exporter's thread and the handler pool included).
"""

from __future__ import annotations

import json
import os
import resource
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

__all__ = [
    "Command",
    "CommandHandler",
    "ProtocolWriter",
    "cpu_seconds",
    "serve_commands",
    "snapshot",
    "take_stdout",
]

Command = Mapping[str, Any]
CommandHandler = Callable[[Command], Mapping[str, Any]]


def cpu_seconds() -> float:
    """User + system CPU seconds consumed so far by this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def snapshot(flush: Callable[[], None]) -> dict[str, float]:
    """The server's ``snap`` reply: export what is pending (its cost lands in the window), then read the clock."""
    flush()
    return {"cpu": cpu_seconds()}


class ProtocolWriter:
    """Writes protocol lines to the stream the launcher reads."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def send(self, message: Mapping[str, Any]) -> None:
        """Write ``message`` as one JSON line and flush it."""
        self._stream.write(json.dumps(message, separators=(",", ":")) + "\n")
        self._stream.flush()


def take_stdout() -> ProtocolWriter:
    """Keep the real stdout for the protocol and point file descriptor 1 (and ``sys.stdout``) at stderr."""
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return ProtocolWriter(protocol)


def serve_commands(writer: ProtocolWriter, handlers: Mapping[str, CommandHandler]) -> None:
    """Answer commands from stdin until ``quit`` or end of input.

    Args:
        writer: where replies go.
        handlers: one handler per command name; its result is the reply. ``quit`` needs no handler.

    Raises:
        ValueError: an unknown command (the launcher and the worker disagree: fail loudly).
    """
    for line in sys.stdin:
        if not line.strip():
            continue
        command: Command = json.loads(line)
        name = command.get("cmd")
        if name == "quit":
            return
        handler = handlers.get(str(name))
        if handler is None:
            raise ValueError(f"unknown command {name!r}")
        writer.send(handler(command))
