"""Running a Python program under valgrind's callgrind, and reading its instruction counts thread by thread.

Two markers let a program under callgrind say where things are, at the cost of one cheap system call each, with
libc functions nothing else in these programs calls:

- ``mark_phase()`` calls ``sched_get_priority_max``. Run with ``dump_before=MARK_SYMBOL``, callgrind writes the
  *calling thread's* counts so far to a new file and zeroes them there: the gate counts a tight loop between two
  marks without another thread ever entering the figure.
- ``label_thread()`` calls ``sched_get_priority_min``. The request-path code of a workload calls it once per
  operation in every thread that serves requests (a gRPC server's handler pool and its ``_serve`` thread, the
  uvicorn loop); a thread whose counts show calls of it belongs to the request path, every other thread (timers,
  pollers, the span exporter, the metrics endpoint) is counted apart.

Counts are read from callgrind's own files (``--separate-threads=yes``: one file per thread and dump), whose
``part:``, ``thread:`` and ``summary:`` lines give the dump, valgrind's thread number and the instructions; the
label calls come from the call records (``cfn=`` / ``calls=``), which ``--compress-strings=no`` keeps readable.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HASH_SEED",
    "LABEL_SYMBOL",
    "MARK_SYMBOL",
    "ThreadCount",
    "callgrind_argv",
    "child_environment",
    "interpreter_key",
    "label_thread",
    "mark_phase",
    "parse_file",
    "read_counts",
    "valgrind_path",
]

MARK_SYMBOL = "sched_get_priority_max"
LABEL_SYMBOL = "sched_get_priority_min"
HASH_SEED = "0"
"""``PYTHONHASHSEED`` of every program counted: the same string hashes, the same dict and set layouts, every run."""


def mark_phase() -> None:
    """Tell callgrind a phase ends here (a dump of this thread when run with ``dump_before=MARK_SYMBOL``)."""
    os.sched_get_priority_max(os.SCHED_OTHER)


def label_thread() -> None:
    """Mark the calling thread as one that serves requests (see the module docstring)."""
    os.sched_get_priority_min(os.SCHED_OTHER)


@dataclass(frozen=True, slots=True)
class ThreadCount:
    """One thread's instructions in one dump.

    Attributes:
        part: callgrind's dump number (1 = the first dump; the dump at exit is the last).
        thread: valgrind's thread number (1 = the main thread).
        instructions: instructions executed by that thread since its previous dump.
        labels: calls of ``label_thread()`` among them.
    """

    part: int
    thread: int
    instructions: int
    labels: int


def parse_file(path: Path) -> ThreadCount | None:
    """Read one callgrind output file (written with ``--compress-strings=no``); None for a header-only file.

    With ``--separate-threads=yes`` callgrind also writes one file without counts (no ``summary:`` line).

    Raises:
        ValueError: a file with counts lacks its ``part:`` or ``thread:`` line.
    """
    header: dict[str, int] = {}
    labels = 0
    after_label_call = False
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if after_label_call and line.startswith("calls="):
                labels += int(line[6:].split(None, 1)[0])
                after_label_call = False
                continue
            if line.startswith("cfn="):
                after_label_call = line.rstrip("\n")[4:] == LABEL_SYMBOL
                continue
            key, colon, value = line.partition(":")
            if colon and key in {"part", "thread", "summary", "totals"} and key not in header:
                header[key] = int(value.split()[0]) if value.split() else 0
    if "summary" not in header and "totals" not in header:
        return None
    missing = [key for key in ("part", "thread") if key not in header]
    if missing:
        raise ValueError(f"{path}: not a complete callgrind output file (missing {', '.join(missing)})")
    return ThreadCount(
        part=header["part"],
        thread=header["thread"],
        instructions=header.get("summary", header.get("totals", 0)),
        labels=labels,
    )


def read_counts(directory: Path, pid: int) -> list[ThreadCount]:
    """Every thread's count of every dump process ``pid`` wrote to ``directory``, ordered by part, then thread."""
    counts = [count for path in directory.glob(f"callgrind.out.{pid}*") if (count := parse_file(path)) is not None]
    return sorted(counts, key=lambda count: (count.part, count.thread))


def callgrind_argv(program: Sequence[str], out_dir: Path, *, dump_before: str | None = None) -> list[str]:
    """The command line running ``program`` (a Python module's argv after ``python``) under callgrind."""
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        "--compress-strings=no",
        "--compress-pos=no",
        "--dump-instr=no",
        "--dump-line=no",
        f"--callgrind-out-file={out_dir / 'callgrind.out.%p'}",
    ]
    if dump_before is not None:
        argv.append(f"--dump-before={dump_before}")
    return [*argv, sys.executable, *program]


def child_environment(base: Mapping[str, str], **extra: str) -> dict[str, str]:
    """``base`` without any OTEL_*/HOPTEL_* setting, with a fixed hash seed, plus ``extra``."""
    env = {k: v for k, v in base.items() if not k.startswith(("OTEL_", "HOPTEL_"))}
    env["PYTHONHASHSEED"] = HASH_SEED
    env.update(extra)
    return env


def interpreter_key() -> str:
    """What instruction counts depend on beyond the code: ``CPython-3.11-x86_64`` (implementation, version, arch)."""
    major, minor = sys.version_info[:2]
    return f"{platform.python_implementation()}-{major}.{minor}-{platform.machine()}"


def valgrind_path() -> str | None:
    """The valgrind executable on PATH, or None."""
    return shutil.which("valgrind")
