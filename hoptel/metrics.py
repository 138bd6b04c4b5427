"""Lean Prometheus metric families with cached label children, registered into an injected registry.

prometheus_client's own metric classes validate labels and build objects on every ``labels()`` call and take
their lock per observation through several layers. hoptel records one observation per hop, so its families are
plain collectors: a label child is looked up once and cached by the caller, and an observation is a bisect plus
two increments under one lock. ``collect()`` renders them with prometheus_client's metric families, so both text
and OpenMetrics exposition (with exemplars) work unchanged.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> registry = CollectorRegistry()
>>> calls = Counter("demo_calls_total", "Calls.", ("method",), registry)
>>> calls.labels("get").inc()
>>> b'demo_calls_total{method="get"} 1.0' in generate_latest(registry)
True
"""

from __future__ import annotations

import itertools
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from time import time
from typing import TYPE_CHECKING, Generic, TypeVar

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Exemplar

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

__all__ = [
    "LATENCY_BUCKETS",
    "Counter",
    "CounterChild",
    "ExemplarLabels",
    "Gauge",
    "Histogram",
    "HistogramChild",
    "ObservationCount",
    "families_of",
]

# Seconds. A Python unary RPC on loopback takes ~0.3 ms, so resolution starts at 100 µs.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


ChildT = TypeVar("ChildT")

# Every hoptel family registered into a registry, so that a process forked after setup() can zero them (see
# ``families_of``). Weak on both sides: a registry or a family that is dropped is forgotten.
_registered: weakref.WeakKeyDictionary[CollectorRegistry, weakref.WeakSet[_Family[object]]] = (
    weakref.WeakKeyDictionary()
)
_registered_lock = threading.Lock()


def families_of(registry: CollectorRegistry) -> list[_Family[object]]:
    """The hoptel families (``Counter``, ``Histogram``, ``Gauge``) registered into ``registry`` so far."""
    with _registered_lock:
        return list(_registered.get(registry, ()))


class ExemplarLabels(dict[str, str]):
    """An exemplar's labels as served to Prometheus (``trace_id``), with the span id kept beside them.

    OpenMetrics exemplars carry ``trace_id`` only, as they always have; the OTLP push (``hoptel.otlp_metrics``)
    also reads ``span_id`` (16 hex digits, or None when the observation was given a bare trace id).
    """

    __slots__ = ("span_id",)

    def __init__(self, trace_id: str, span_id: str | None) -> None:
        super().__init__(trace_id=trace_id)
        self.span_id = span_id


def _exemplar(sampled: int | str | SpanContext, value: float, timestamp: float) -> Exemplar:
    span_hex = None
    if isinstance(sampled, str):
        trace_hex = sampled
    elif isinstance(sampled, int):
        trace_hex = format(sampled, "032x")
    else:
        trace_hex = format(sampled.trace_id, "032x")
        span_hex = format(sampled.span_id, "016x")
    return Exemplar(ExemplarLabels(trace_hex, span_hex), value, timestamp)


def _format_bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _ticks_of(ticks: itertools.count[int]) -> int:
    """How far ``ticks`` has counted, read without advancing it: its repr is ``count(N)`` (CPython 3.10 to 3.14)."""
    return int(repr(ticks)[6:-1])


class CounterChild:
    """One labelled series of a counter.

    Counting one (``tick()``, what the per-call path does) takes no lock: it advances an ``itertools.count``,
    whose ``next()`` is a single C call that the GIL keeps whole. Other amounts are added under a lock.
    """

    __slots__ = ("_added", "_lock", "_ticks", "tick")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._added = 0.0
        self._ticks = itertools.count()
        self.tick = self._ticks.__next__
        """Add one: a bound C method, the cheapest call there is (its return value means nothing)."""

    @property
    def value(self) -> float:
        """The counter's value."""
        return _ticks_of(self._ticks) + self._added

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (>= 0) to the counter."""
        if amount == 1:
            self.tick()
            return
        with self._lock:
            self._added += amount

    def reset(self) -> None:
        """Start again from zero with a new lock (in a forked child, the parent's lock may have been held)."""
        self._lock = threading.Lock()
        self._added = 0.0
        self._ticks = itertools.count()
        self.tick = self._ticks.__next__


class ObservationCount(CounterChild):
    """A counter series that counts the observations of a histogram series, read when the registry is collected.

    For a series that moves in lock-step with a histogram (a unary RPC sends exactly one message per finished
    call) this saves the counter's own locked update on every call. It cannot be incremented.
    """

    __slots__ = ("_histogram",)

    def __init__(self, histogram: HistogramChild) -> None:
        self._histogram = histogram

    @property
    def value(self) -> float:
        """The histogram series' observation count."""
        return float(self._histogram.count)

    @value.setter
    def value(self, _: float) -> None:
        raise TypeError("an ObservationCount counts a histogram's observations; it cannot be set")

    def inc(self, amount: float = 1.0) -> None:
        """Not allowed: the value follows the histogram."""
        raise TypeError("an ObservationCount counts a histogram's observations; it cannot be incremented")

    def reset(self) -> None:
        """Nothing to do: the value follows the histogram, which is reset on its own."""


class HistogramChild:
    """One labelled series of a histogram; the last exemplar per bucket is kept."""

    __slots__ = ("_counts", "_exemplars", "_lock", "_upper", "sum")

    def __init__(self, upper: Sequence[float]) -> None:
        self._upper = upper
        self._counts = [0] * len(upper)
        self._exemplars: list[tuple[int | str | SpanContext, float, float] | None] = [None] * len(upper)
        self._lock = threading.Lock()
        self.sum = 0.0

    def observe(self, value: float, trace_id: int | str | SpanContext | None = None) -> None:
        """Record one observation; ``trace_id`` attaches an exemplar for sampled calls.

        ``trace_id`` is the sampled span's ``SpanContext`` (trace and span id), or a bare trace id (an int, or 32
        hex chars). The exemplar is kept raw and only formatted when the registry is collected.
        """
        index = bisect_left(self._upper, value)
        with self._lock:
            self._counts[index] += 1
            self.sum += value
        if trace_id is not None:
            self._exemplars[index] = (trace_id, value, time())

    def reset(self) -> None:
        """Start again from zero, without exemplars, with a new lock (see ``CounterChild.reset``)."""
        self._lock = threading.Lock()
        self._counts = [0] * len(self._upper)
        self._exemplars = [None] * len(self._upper)
        self.sum = 0.0

    @property
    def count(self) -> int:
        """The number of observations so far."""
        return sum(self._counts)

    def snapshot(self) -> tuple[list[int], float, list[Exemplar | None]]:
        """Per-bucket (non-cumulative) counts, the sum and the exemplars, read consistently."""
        with self._lock:
            counts, total, raw = list(self._counts), self.sum, list(self._exemplars)
        return counts, total, [None if e is None else _exemplar(*e) for e in raw]


class _Family(Generic[ChildT]):
    """A metric family: label names, and children created on first use of a label tuple."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], ChildT] = {}
        if registry is not None:
            registry.register(self)
            with _registered_lock:
                _registered.setdefault(registry, weakref.WeakSet()).add(self)  # type: ignore[arg-type]  # ChildT varies

    def reset(self) -> None:
        """Zero every series, keeping the series themselves (cached children stay valid).

        Used in a process forked after ``setup()`` whose state is merged with its parent's: the parent already
        counts what happened before the fork.
        """
        self._lock = threading.Lock()
        for child in list(self._children.values()):
            reset = getattr(child, "reset", None)
            if reset is not None:
                reset()

    def _new_child(self) -> ChildT:
        raise NotImplementedError  # pragma: no cover - each labelled family overrides it

    def labels(self, *values: str) -> ChildT:
        """The child for these label values, created on first use. Cache it on the hot path."""
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            with self._lock:
                child = self._children.setdefault(values, self._new_child())
        return child

    @property
    def series_count(self) -> int:
        """How many label combinations exist."""
        return len(self._children)

    def describe(self) -> Iterable[Metric]:
        """No samples: lets the registry check for name clashes without collecting."""
        return [self._empty_family()]

    def _empty_family(self) -> Metric:
        raise NotImplementedError  # pragma: no cover - each family overrides it

    def collect(self) -> Iterable[Metric]:  # pragma: no cover - each family overrides it
        """Render every child as a prometheus_client family."""
        raise NotImplementedError


class Counter(_Family[CounterChild]):
    """A labelled counter. ``name`` ends in ``_total``."""

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        """Increment the unlabelled series."""
        self.labels().inc(amount)

    def count_of(self, histogram: HistogramChild, *values: str) -> CounterChild:
        """The series for ``values``, made to count ``histogram``'s observations (see ``ObservationCount``).

        Raises:
            ValueError: the series already exists and counts something else.
        """
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        with self._lock:
            child = self._children.setdefault(values, ObservationCount(histogram))
        if not isinstance(child, ObservationCount) or child._histogram is not histogram:
            raise ValueError(f"{self.name}{values} already counts something else")
        return child

    def _empty_family(self) -> Metric:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterable[Metric]:
        """Render every child."""
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(values, child.value)
        return [family]


class Gauge(_Family[None]):
    """An unlabelled gauge whose value is read from a callable at scrape time."""

    def __init__(
        self,
        name: str,
        documentation: str,
        read: object,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not callable(read):
            raise TypeError("read must be a callable returning a number")
        self._read = read
        super().__init__(name, documentation, (), registry)

    def _empty_family(self) -> Metric:
        return GaugeMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterable[Metric]:
        """Read the current value."""
        return [GaugeMetricFamily(self.name, self.documentation, value=float(self._read()))]


class Histogram(_Family[HistogramChild]):
    """A labelled histogram with fixed buckets (``+Inf`` is added) and exemplars."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != float("inf"):
            bounds.append(float("inf"))
        self._upper = tuple(bounds)
        self._bound_labels = tuple(_format_bound(b) for b in bounds)
        super().__init__(name, documentation, labelnames, registry)

    @property
    def buckets(self) -> tuple[float, ...]:
        """The finite bucket upper bounds in seconds (``+Inf`` excluded)."""
        return self._upper[:-1]

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self._upper)

    def _empty_family(self) -> Metric:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterable[Metric]:
        """Render every child with cumulative buckets and their exemplars."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            counts, total, exemplars = child.snapshot()
            cumulative = 0
            buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
            for bound, count, exemplar in zip(self._bound_labels, counts, exemplars, strict=True):
                cumulative += count
                if exemplar is None:
                    buckets.append((bound, float(cumulative)))
                else:
                    buckets.append((bound, float(cumulative), exemplar))
            family.add_metric(values, buckets, total)
        return [family]
