"""Keep gRPC core's own stderr output (the ``I0501 12:00:00 chttp2_transport.cc] ...`` lines) at errors only.

gRPC's C core does not log through Python's ``logging``; it writes to stderr through absl logging, and
directives cannot reach it. Its threshold comes from the ``GRPC_VERBOSITY`` environment variable, which the core
reads **once, when** ``import grpc`` **loads** ``grpc._cython.cygrpc`` (checked with grpcio 1.85: setting it
after ``import grpc``, even before the first channel or server, changes nothing in that process).

So :func:`quiet_grpc_core` sets ``GRPC_VERBOSITY=ERROR`` unless the user set ``GRPC_VERBOSITY`` or
``GRPC_TRACE`` (asking for gRPC tracing means wanting its output), and it only quiets this process when it runs
before the first ``import grpc``. Otherwise it still applies to child processes started later (they inherit the
environment), and the reliable way is to set ``GRPC_VERBOSITY=ERROR`` in the service's environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass

__all__ = ["QUIET_VERBOSITY", "GrpcVerbosity", "grpc_core_loaded", "quiet_grpc_core", "undo_grpc_verbosity"]

QUIET_VERBOSITY = "ERROR"
"""The value set: gRPC core prints errors only."""


@dataclass(frozen=True, slots=True)
class GrpcVerbosity:
    """What :func:`quiet_grpc_core` did.

    Attributes:
        set_by_hoptel: ``GRPC_VERBOSITY`` was set to ``ERROR`` (the user had set neither variable).
        effective: It can still affect this process: gRPC core was not loaded yet.
    """

    set_by_hoptel: bool
    effective: bool


def grpc_core_loaded() -> bool:
    """Whether gRPC's C core (``grpc._cython.cygrpc``) is already loaded in this process."""
    return "grpc._cython.cygrpc" in sys.modules


def quiet_grpc_core(environ: MutableMapping[str, str] | None = None) -> GrpcVerbosity:
    """Set ``GRPC_VERBOSITY=ERROR`` unless ``GRPC_VERBOSITY`` or ``GRPC_TRACE`` is already set.

    Args:
        environ: The environment to change (default ``os.environ``).

    Returns:
        What was done, and whether it can still take effect in this process.
    """
    env = os.environ if environ is None else environ
    if "GRPC_VERBOSITY" in env or "GRPC_TRACE" in env:
        return GrpcVerbosity(set_by_hoptel=False, effective=False)
    env["GRPC_VERBOSITY"] = QUIET_VERBOSITY
    return GrpcVerbosity(set_by_hoptel=True, effective=not grpc_core_loaded())


def undo_grpc_verbosity(change: GrpcVerbosity, environ: MutableMapping[str, str] | None = None) -> None:
    """Remove ``GRPC_VERBOSITY`` again if hoptel set it and nobody changed it since.

    Args:
        change: What :func:`quiet_grpc_core` returned.
        environ: The same environment (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if change.set_by_hoptel and env.get("GRPC_VERBOSITY") == QUIET_VERBOSITY:
        del env["GRPC_VERBOSITY"]
