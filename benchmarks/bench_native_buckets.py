"""What recording a second, exponential (native-histogram) bucket set per observation would cost one RPC.

Run: ``python -m benchmarks.bench_native_buckets``. Prints CPU µs per call for the per-call metric record of one unary
RPC (``grpc_*_started_total``, ``grpc_*_handled_total``, the latency histogram with an exemplar: what
``benchmarks.overhead.metric_record`` measures), with hoptel's histogram as it is and with two prototypes that also
count the observation in a Prometheus native-histogram bucket of schema 3 (2^(1/8) growth, as client_golang's
default factor 1.1 picks):

- ``dict``: the bucket key from ``math.frexp`` and a bisect over the schema's bounds (client_golang's method),
  counted in a dict, as a sparse histogram needs;
- ``list``: the key as ``ceil(log2(v) * 8)``, counted in a preallocated list (no dict, no bisect): the cheapest
  form found.

Native buckets cannot be derived from the fixed ones at scrape time without loss (their bounds do not line up),
so serving native histograms means paying one of these on every call. The prototypes live only here.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Sequence
from time import time

from benchmarks.overhead.metric_record import metric_record_us
from hoptel.metrics import HistogramChild

__all__ = ["main", "record_us"]

SCHEMA = 3
_PER_POWER = 2**SCHEMA
_FRACTION_BOUNDS = [2 ** (i / _PER_POWER - 1) for i in range(_PER_POWER)]  # within [0.5, 1), as frexp returns
_ZERO_THRESHOLD = 2.0**-128
_KEY_OFFSET = 400  # list slot of key 0: covers 2^-50 s .. 2^50 s at schema 3
_ceil = math.ceil
_log2 = math.log2
_frexp = math.frexp


class DictNativeChild(HistogramChild):
    """hoptel's histogram series plus a sparse native bucket count per observation (frexp, bisect, dict)."""

    __slots__ = ("_native", "_zero")

    def __init__(self, upper: Sequence[float]) -> None:
        super().__init__(upper)
        self._native: dict[int, int] = {}
        self._zero = 0

    def observe(self, value: float, trace_id: object = None) -> None:
        """Count ``value`` in its fixed and its native bucket."""
        index = bisect_left(self._upper, value)
        fraction, exponent = _frexp(value)
        key = bisect_left(_FRACTION_BOUNDS, fraction) + (exponent - 1) * _PER_POWER
        native = self._native
        with self._lock:
            self._counts[index] += 1
            self.sum += value
            if value > _ZERO_THRESHOLD:
                native[key] = native.get(key, 0) + 1
            else:
                self._zero += 1
        if trace_id is not None:
            self._exemplars[index] = (trace_id, value, time())  # type: ignore[assignment]  # as the parent does


class ListNativeChild(HistogramChild):
    """hoptel's histogram series plus a native bucket count per observation (log2, ceil, list)."""

    __slots__ = ("_native",)

    def __init__(self, upper: Sequence[float]) -> None:
        super().__init__(upper)
        self._native = [0] * (2 * _KEY_OFFSET)

    def observe(self, value: float, trace_id: object = None) -> None:
        """Count ``value`` in its fixed and its native bucket (slot 0: the zero bucket)."""
        index = bisect_left(self._upper, value)
        slot = _ceil(_log2(value) * _PER_POWER) + _KEY_OFFSET if value > _ZERO_THRESHOLD else 0
        with self._lock:
            self._counts[index] += 1
            self.sum += value
            self._native[slot] += 1
        if trace_id is not None:
            self._exemplars[index] = (trace_id, value, time())  # type: ignore[assignment]  # as the parent does


def record_us(make_histogram: Callable[[Sequence[float]], HistogramChild] | None) -> float:
    """CPU µs per call of one unary RPC's metric record, the histogram replaced by ``make_histogram``'s if given."""
    return metric_record_us(make_histogram)


def main() -> None:
    """Print the three costs, interleaved over three rounds so that a busy machine affects them alike."""
    variants: dict[str, Callable[[Sequence[float]], HistogramChild] | None] = {
        "fixed buckets (as shipped)": None,
        "+ native, dict": DictNativeChild,
        "+ native, list": ListNativeChild,
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(3):
        for name, make in variants.items():
            best[name] = min(best[name], record_us(make))
    for name, us in best.items():
        print(f"{name:28} {us:.3f} µs per call")


if __name__ == "__main__":
    main()
