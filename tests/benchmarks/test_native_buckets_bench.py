"""benchmarks/bench_native_buckets.py: its prototypes count what they claim, so the costs it prints are of real work.

No timing is checked here; the measured costs are in the README's "Rules and dashboard" section.
"""

from __future__ import annotations

import math

import pytest

from benchmarks.bench_native_buckets import _KEY_OFFSET, DictNativeChild, ListNativeChild
from hoptel.metrics import LATENCY_BUCKETS

VALUES = [0.0003, 0.00031, 0.002, 0.0025, 0.05, 1.0, 1.2, 7.5]


def _schema3_key(value: float) -> int:
    """The native bucket of ``value`` at schema 3: the k with 2^((k-1)/8) < value <= 2^(k/8)."""
    return next(k for k in range(-200, 200) if 2 ** ((k - 1) / 8) < value <= 2 ** (k / 8))


@pytest.mark.parametrize("value", VALUES)
def test_both_prototypes_count_the_schema_3_bucket(value: float) -> None:
    """Each prototype counts one observation in the fixed buckets and in the schema-3 bucket that holds it."""
    by_dict = DictNativeChild(LATENCY_BUCKETS)
    by_list = ListNativeChild(LATENCY_BUCKETS)
    by_dict.observe(value, 0x1)
    by_list.observe(value)
    key = _schema3_key(value)
    assert by_dict._native == {key: 1}
    assert [slot - _KEY_OFFSET for slot, n in enumerate(by_list._native) if n] == [key]
    assert by_dict.count == by_list.count == 1
    assert math.isclose(by_dict.sum, value)
