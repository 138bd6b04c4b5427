"""One worker process's metric state as a value: taken from its registry, written to a file, read back safely.

A process of a worker group (see ``hoptel.worker_group``) publishes what its registry holds so that whichever
process serves the group's metrics address can merge it. The state is what ``collect()`` renders: every family
(name, type, help, unit) with its samples (sample name, labels, value, exemplar). For a histogram that is the
cumulative ``_bucket`` samples plus ``_count`` and ``_sum``; summing cumulative buckets of several processes is the
same as summing their buckets one by one, so a merge needs nothing else.

The file is JSON (never pickle: a state file is data, whoever wrote it), written atomically (a temporary file in the
same directory, then ``os.replace``), so a reader sees the previous state or the new one, never half of one.
:func:`decode` checks every field and raises :class:`StateError` on anything else, so a damaged file is skipped by
its reader instead of breaking a scrape.

>>> from prometheus_client import CollectorRegistry
>>> from hoptel.metrics import Counter
>>> registry = CollectorRegistry()
>>> Counter("calls_total", "Calls.", ("method",), registry).labels("get").inc(2)
>>> state = decode(encode(snapshot(registry, pid=7)))
>>> [(s.name, s.labels, s.value) for s in state.families[0].samples]
[('calls_total', (('method', 'get'),), 2.0)]
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.registry import Collector

__all__ = [
    "FORMAT",
    "ExemplarState",
    "FamilyState",
    "SampleState",
    "StateError",
    "StateReader",
    "WorkerState",
    "decode",
    "encode",
    "read_state",
    "snapshot",
    "write_atomically",
]

FORMAT = "hoptel-worker-state/1"
"""The ``format`` field of every state file; a file with another value is not read."""

Labels = tuple[tuple[str, str], ...]


class StateError(ValueError):
    """A state file that cannot be used: unreadable, truncated, not JSON, or not of the expected shape."""


@dataclass(frozen=True, slots=True)
class ExemplarState:
    """The exemplar of one sample (a histogram bucket): its labels (``trace_id``), value and Unix time."""

    labels: Labels
    value: float
    timestamp: float | None


@dataclass(frozen=True, slots=True)
class SampleState:
    """One sample of a family, e.g. ``grpc_server_handling_seconds_bucket{...,le="0.001"}``."""

    name: str
    labels: Labels
    value: float
    exemplar: ExemplarState | None = None


@dataclass(frozen=True, slots=True)
class FamilyState:
    """One metric family as collected: name (without ``_total`` for counters), type, help, unit and samples."""

    name: str
    type: str
    documentation: str
    unit: str
    samples: tuple[SampleState, ...]


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What one process (or, for the folded file, every exited process) had recorded.

    Attributes:
        pid: the process that wrote it (0 for merged state).
        written: Unix time of the snapshot.
        families: the families, in collection order.
        exited: how many exited processes were folded into this state (0 for a live process's own file).
        folded: the member file names folded into this state whose files may still exist (see ``worker_dir``).
    """

    pid: int
    written: float
    families: tuple[FamilyState, ...]
    exited: int = 0
    folded: tuple[str, ...] = ()


def snapshot(registry: Collector, pid: int | None = None) -> WorkerState:
    """Collect ``registry`` now into a :class:`WorkerState` (``pid`` defaults to this process's)."""
    families = []
    for metric in registry.collect():
        samples = []
        for sample in metric.samples:
            exemplar = None
            if sample.exemplar is not None:
                exemplar = ExemplarState(
                    tuple(sorted(sample.exemplar.labels.items())),
                    float(sample.exemplar.value),
                    None if sample.exemplar.timestamp is None else float(sample.exemplar.timestamp),
                )
            labels = tuple(sorted(sample.labels.items()))
            samples.append(SampleState(sample.name, labels, float(sample.value), exemplar))
        families.append(FamilyState(metric.name, metric.type, metric.documentation, metric.unit, tuple(samples)))
    return WorkerState(os.getpid() if pid is None else pid, time.time(), tuple(families))


def encode(state: WorkerState) -> bytes:
    """The JSON bytes of ``state`` (non-finite values as JSON's ``Infinity``/``NaN`` extensions)."""
    document = {
        "format": FORMAT,
        "pid": state.pid,
        "written": state.written,
        "exited": state.exited,
        "folded": list(state.folded),
        "families": [
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "unit": family.unit,
                "samples": [
                    [
                        sample.name,
                        dict(sample.labels),
                        sample.value,
                        None
                        if sample.exemplar is None
                        else [dict(sample.exemplar.labels), sample.exemplar.value, sample.exemplar.timestamp],
                    ]
                    for sample in family.samples
                ],
            }
            for family in state.families
        ],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode(data: bytes) -> WorkerState:
    """Parse and check a state file's bytes.

    Raises:
        StateError: not UTF-8 JSON, another format, or any field of the wrong type.
    """
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise StateError(f"not a JSON document ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StateError(f"not a {FORMAT} document")
    families = tuple(_family(item) for item in _list(document.get("families"), "families"))
    folded = tuple(_text(name, "folded") for name in _list(document.get("folded", []), "folded"))
    return WorkerState(
        _integer(document.get("pid"), "pid"),
        _number(document.get("written"), "written"),
        families,
        _integer(document.get("exited", 0), "exited"),
        folded,
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) through a temporary file beside it (one per thread) and ``os.replace``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
    os.replace(temporary, path)


def read_state(path: Path) -> WorkerState:
    """Read and decode one state file.

    Raises:
        FileNotFoundError: the file is gone (its process was folded in the meantime): not an error.
        StateError: it cannot be read or used.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateError(f"cannot read ({exc.strerror or exc})") from None
    return decode(data)


class StateReader:
    """Reads state files, parsing each version of a file once; a damaged version is reported once and skipped.

    A version is the file's modification time, size and inode (``os.replace`` gives every write a new inode).

    Args:
        on_damaged: called with the path and the error the first time a version of a file cannot be used.
    """

    def __init__(self, on_damaged: Callable[[Path, StateError], None]) -> None:
        self._on_damaged = on_damaged
        self._parsed: dict[Path, tuple[tuple[int, int, int], WorkerState]] = {}
        self._damaged: dict[Path, tuple[int, int, int]] = {}

    def read(self, path: Path) -> WorkerState | None:
        """The state in ``path``; None when the file is gone or damaged."""
        try:
            info = path.stat()
        except FileNotFoundError:
            return None
        version = (info.st_mtime_ns, info.st_size, info.st_ino)
        parsed = self._parsed.get(path)
        if parsed is not None and parsed[0] == version:
            return parsed[1]
        if self._damaged.get(path) == version:
            return None
        try:
            state = read_state(path)
        except FileNotFoundError:
            return None
        except StateError as exc:
            self._damaged[path] = version
            self._on_damaged(path, exc)
            return None
        self._parsed[path] = (version, state)
        return state

    def forget(self, path: Path) -> None:
        """Drop what is remembered about ``path`` (its file was removed)."""
        self._parsed.pop(path, None)
        self._damaged.pop(path, None)


def _family(item: Any) -> FamilyState:
    if not isinstance(item, dict):
        raise StateError("a family is not an object")
    samples = tuple(_sample(entry) for entry in _list(item.get("samples"), "samples"))
    return FamilyState(
        _text(item.get("name"), "name"),
        _text(item.get("type"), "type"),
        _text(item.get("help"), "help"),
        _text(item.get("unit"), "unit"),
        samples,
    )


def _sample(entry: Any) -> SampleState:
    if not isinstance(entry, list) or len(entry) != 4:
        raise StateError("a sample is not [name, labels, value, exemplar]")
    name, labels, value, exemplar = entry
    parsed = None
    if exemplar is not None:
        if not isinstance(exemplar, list) or len(exemplar) != 3:
            raise StateError("an exemplar is not [labels, value, timestamp]")
        timestamp = None if exemplar[2] is None else _number(exemplar[2], "exemplar timestamp")
        parsed = ExemplarState(_labels(exemplar[0]), _number(exemplar[1], "exemplar value"), timestamp)
    return SampleState(_text(name, "sample name"), _labels(labels), _number(value, "value", finite=False), parsed)


def _labels(value: Any) -> Labels:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise StateError("labels are not an object of strings")
    return tuple(sorted(value.items()))


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise StateError(f"{what} is not a list")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise StateError(f"{what} is not a string")
    return value


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateError(f"{what} is not a non-negative integer")
    return value


def _number(value: Any, what: str, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateError(f"{what} is not a number")
    number = float(value)
    if finite and not math.isfinite(number):
        raise StateError(f"{what} is not finite")
    return number
