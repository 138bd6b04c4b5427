"""A latency histogram kept per status code inside, served per method: one observation, both views.

go-grpc-middleware's ``grpc_*_handling_seconds`` has no status code label, and its dashboards read it so; the OTel
semantic conventions put the status code on ``rpc.*.call.duration``. A ``CodedHistogramChild`` is the series of one
method: each finished call observes into the part of its status code (``for_code``, looked up once per route and
code, so a call still costs one bisect and two increments), and the series renders as the sum of its parts. The
Prometheus exposition is unchanged; ``CodedHistogram.collect()`` also hangs the per-code parts on the family it
returns (attribute ``BY_CODE``), which the OTLP push reads (``hoptel.otlp_metrics``).

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> registry = CollectorRegistry()
>>> family = CodedHistogram("rpc_seconds", "Latency.", ("method",), registry, buckets=(0.01,))
>>> series = family.labels("Get")
>>> series.for_code(StatusKey(0, "OK", False)).observe(0.005)
>>> series.for_code(StatusKey(5, "NOT_FOUND", False)).observe(0.5)
>>> print(generate_latest(registry).decode().splitlines()[3])
rpc_seconds_bucket{le="+Inf",method="Get"} 2.0
>>> [(key.name, sum(counts)) for _, key, _, counts, _, _ in coded_parts(list(registry.collect())[0])]
[('OK', 1), ('NOT_FOUND', 1)]
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Exemplar

from hoptel.metrics import Histogram, HistogramChild

__all__ = ["BY_CODE", "CodedHistogram", "CodedHistogramChild", "CodedPart", "StatusKey", "coded_parts", "merge_parts"]

BY_CODE = "hoptel_by_code"
"""The attribute of a collected family that reads its per-code parts: a list of callables returning ``CodedPart``s,
called only by ``coded_parts`` (a scrape never reads the parts, so it does not pay for them)."""


@dataclass(frozen=True, slots=True)
class StatusKey:
    """A status code as the parts are keyed: its number, its name (``NOT_FOUND``), and whether it is an error."""

    number: int
    name: str
    failed: bool


CodedPart = tuple[dict[str, str], "StatusKey | None", tuple[float, ...], list[int], float, list["Exemplar | None"]]
"""One part: the series' labels, its status (None: observed without one), the finite bucket bounds, per-bucket
counts (``+Inf`` last), the sum, and per bucket the latest exemplar."""


def _latest(a: Exemplar | None, b: Exemplar | None) -> Exemplar | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if _seconds(b) >= _seconds(a) else a


def _seconds(exemplar: Exemplar) -> float:
    """The exemplar's time (hoptel's exemplars carry a float; prometheus_client also allows a ``Timestamp``)."""
    timestamp = exemplar.timestamp
    return float(timestamp) if isinstance(timestamp, (int, float)) else 0.0


class CodedHistogramChild(HistogramChild):
    """One series whose observations are kept per status code; it reads as the sum of its parts.

    ``observe`` on the series itself records a part without a status code (for callers that have none).
    """

    __slots__ = ("_parts", "_parts_lock")

    def __init__(self, upper: Sequence[float]) -> None:
        super().__init__(upper)
        self._parts: dict[StatusKey, HistogramChild] = {}
        self._parts_lock = threading.Lock()

    def for_code(self, key: StatusKey) -> HistogramChild:
        """The part of status ``key``, created on first use; cache it (a route keeps one per outcome)."""
        part = self._parts.get(key)
        if part is None:
            with self._parts_lock:
                part = self._parts.setdefault(key, HistogramChild(self._upper))
        return part

    @property
    def count(self) -> int:
        """Observations in every part."""
        return super().count + sum(part.count for part in list(self._parts.values()))

    def parts(self) -> list[tuple[StatusKey | None, tuple[list[int], float, list[Exemplar | None]]]]:
        """Each part that has observations (the code-less one first), with its snapshot."""
        found: list[tuple[StatusKey | None, tuple[list[int], float, list[Exemplar | None]]]] = []
        own = super().snapshot()
        if any(own[0]):
            found.append((None, own))
        for key, part in list(self._parts.items()):
            snapshot = part.snapshot()
            if any(snapshot[0]):
                found.append((key, snapshot))
        return found

    def snapshot(self) -> tuple[list[int], float, list[Exemplar | None]]:
        """The parts added up: per-bucket counts, the sum, and per bucket the latest exemplar."""
        counts, total, exemplars = super().snapshot()
        for part in list(self._parts.values()):
            part_counts, part_total, part_exemplars = part.snapshot()
            counts = [a + b for a, b in zip(counts, part_counts, strict=True)]
            total += part_total
            exemplars = [_latest(a, b) for a, b in zip(exemplars, part_exemplars, strict=True)]
        return counts, total, exemplars

    def reset(self) -> None:
        """Zero the series and every part, keeping the parts (outcomes hold them)."""
        super().reset()
        self._parts_lock = threading.Lock()
        for part in list(self._parts.values()):
            part.reset()


class CodedHistogram(Histogram):
    """A ``Histogram`` whose series are ``CodedHistogramChild``; collected families carry their parts."""

    def _new_child(self) -> HistogramChild:
        return CodedHistogramChild(self._upper)

    def collect(self) -> list[Metric]:
        """Render as a ``Histogram`` does, with the per-code parts on the family (attribute ``BY_CODE``)."""
        (family,) = super().collect()
        setattr(family, BY_CODE, [self._parts])
        return [family]

    def _parts(self) -> list[CodedPart]:
        parts: list[CodedPart] = []
        for values, child in list(self._children.items()):
            if isinstance(child, CodedHistogramChild):
                labels = dict(zip(self.labelnames, values, strict=True))
                parts.extend((labels, key, self.buckets, *snapshot) for key, snapshot in child.parts())
        return parts


def coded_parts(family: Any) -> list[CodedPart] | None:
    """The per-code parts of a collected family, read now; None for a family that has none."""
    readers = getattr(family, BY_CODE, None)
    if not isinstance(readers, list):
        return None
    return [part for read in readers for part in read()]


def merge_parts(into: Metric, other: Metric) -> None:
    """Add ``other``'s per-code parts to ``into``'s (a family rendered from several, e.g. with extra labels)."""
    extra = getattr(other, BY_CODE, None)
    if not isinstance(extra, list):
        return
    mine = getattr(into, BY_CODE, None)
    if isinstance(mine, list):
        mine.extend(extra)
    else:
        setattr(into, BY_CODE, list(extra))
