"""Loopback TCP ports for tests: one that was free a moment ago, and one a listening socket holds."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

__all__ = ["busy_port", "free_port"]


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def busy_port() -> Iterator[int]:
    """A 127.0.0.1 port that a listening socket of this process holds until the block ends."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])
