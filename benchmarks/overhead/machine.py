"""What a result was measured on: CPU, cores, OS, Python, the versions of every package in the comparison."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "Machine", "describe_machine"]

PACKAGES = (
    "hoptel",
    "grpcio",
    "protobuf",
    "httpx",
    "uvicorn",
    "starlette",
    "h11",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-exporter-otlp-proto-grpc",
    "opentelemetry-instrumentation-grpc",
    "opentelemetry-instrumentation-httpx",
    "opentelemetry-instrumentation-asgi",
    "py-grpc-prometheus",
    "prometheus-client",
)


@dataclass(frozen=True)
class Machine:
    """The facts printed under every result table."""

    date: str
    cpu_model: str
    cores: int
    usable_cores: int
    os: str
    python: str
    load_average: tuple[float, float, float]
    git: str
    versions: dict[str, str] = field(default_factory=dict)


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"model name", "Model", "cpu model"}:
            return value.strip()
    return platform.processor() or "unknown"


def _git(repo: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe_machine(repo: Path) -> Machine:
    """Describe this machine and the software under test (``repo`` is hoptel's checkout, for its commit)."""
    load = os.getloadavg()
    return Machine(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0,
        os=platform.platform(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        git=_git(repo),
        versions={package: _version(package) for package in PACKAGES},
    )
