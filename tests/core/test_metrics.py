"""hoptel.metrics: lock-free counter ticks, and counters that count a histogram's observations (unary RPC sides)."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from hoptel.metrics import Counter, Histogram, ObservationCount


def _families(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    sent = Counter("demo_msg_sent_total", "Messages.", ("method",), registry)
    seconds = Histogram("demo_seconds", "Latency.", ("method",), registry)
    return sent, seconds


def test_observation_count_follows_the_histogram_in_the_exposition() -> None:
    registry = CollectorRegistry()
    sent, seconds = _families(registry)
    histogram = seconds.labels("get")
    counted = sent.count_of(histogram, "get")
    assert isinstance(counted, ObservationCount)
    assert counted.value == 0.0
    for value in (0.0002, 0.003, 0.5):
        histogram.observe(value)
    assert counted.value == 3.0
    text = generate_latest(registry).decode()
    assert 'demo_msg_sent_total{method="get"} 3.0' in text
    assert 'demo_seconds_count{method="get"} 3.0' in text


def test_count_of_is_idempotent_for_the_same_histogram() -> None:
    sent, seconds = _families(CollectorRegistry())
    histogram = seconds.labels("get")
    assert sent.count_of(histogram, "get") is sent.count_of(histogram, "get")
    assert sent.series_count == 1


def test_count_of_refuses_a_series_that_counts_something_else() -> None:
    sent, seconds = _families(CollectorRegistry())
    sent.labels("put").inc()
    with pytest.raises(ValueError, match="already counts something else"):
        sent.count_of(seconds.labels("put"), "put")
    sent.count_of(seconds.labels("get"), "get")
    with pytest.raises(ValueError, match="already counts something else"):
        sent.count_of(seconds.labels("other"), "get")


def test_count_of_checks_the_label_count() -> None:
    sent, seconds = _families(CollectorRegistry())
    with pytest.raises(ValueError, match="takes labels"):
        sent.count_of(seconds.labels("get"), "get", "extra")


def test_an_observation_count_cannot_be_incremented_or_set() -> None:
    sent, seconds = _families(CollectorRegistry())
    counted = sent.count_of(seconds.labels("get"), "get")
    with pytest.raises(TypeError, match="cannot be incremented"):
        counted.inc()
    with pytest.raises(TypeError, match="cannot be set"):
        counted.value = 5.0
    assert counted.value == 0.0


def test_counter_ticks_and_amounts_add_up_in_the_exposition() -> None:
    """``tick()`` (the lock-free per-call count) and ``inc(amount)`` add into one value, read without advancing."""
    registry = CollectorRegistry()
    sent, _ = _families(registry)
    child = sent.labels("get")
    for _ in range(1000):
        child.tick()
    child.inc()
    child.inc(2.5)
    assert child.value == 1003.5
    assert child.value == 1003.5  # reading does not count
    assert 'demo_msg_sent_total{method="get"} 1003.5' in generate_latest(registry).decode()
    child.reset()
    child.tick()
    assert child.value == 1.0


def test_counter_ticks_from_many_threads_lose_nothing() -> None:
    """Ticks from racing threads all count (``itertools.count`` advances in one C call under the GIL)."""
    child = _families(CollectorRegistry())[0].labels("get")
    threads = [threading.Thread(target=lambda: [child.tick() for _ in range(20_000)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert child.value == 80_000.0
