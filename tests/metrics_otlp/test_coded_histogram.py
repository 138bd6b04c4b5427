"""A latency series kept per status code inside: served as one per-method series, read per code by the push."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.exposition import generate_latest

from hoptel.coded_histogram import CodedHistogram, StatusKey, coded_parts

OK = StatusKey(0, "OK", False)
UNAVAILABLE = StatusKey(14, "UNAVAILABLE", True)


def _family() -> tuple[CollectorRegistry, CodedHistogram]:
    registry = CollectorRegistry()
    return registry, CodedHistogram("demo_seconds", "Latency.", ("method",), registry, buckets=(0.01, 1.0))


def test_series_renders_the_sum_of_its_parts_with_the_latest_exemplar() -> None:
    """Buckets, count and sum add up over the codes; each bucket shows the newest exemplar of any code."""
    registry, family = _family()
    series = family.labels("Get")
    series.for_code(OK).observe(0.005, 0xA)
    series.for_code(UNAVAILABLE).observe(0.006, 0xB)
    series.for_code(OK).observe(0.5)

    text = generate_latest(registry).decode()
    assert 'demo_seconds_bucket{le="0.01",method="Get"} 2.0 # {trace_id="' + format(0xB, "032x") + '"} 0.006' in text
    assert 'demo_seconds_count{method="Get"} 3.0' in text
    assert series.count == 3


def test_parts_are_read_per_code_with_their_bounds() -> None:
    """coded_parts lists each code's counts, sum and the family's bounds; codes never observed are absent."""
    registry, family = _family()
    series = family.labels("Get")
    series.for_code(OK).observe(0.005)
    series.for_code(OK).observe(2.0)
    series.for_code(UNAVAILABLE)  # looked up, never observed
    (metric,) = registry.collect()

    parts = coded_parts(metric)
    assert parts is not None
    ((labels, key, bounds, counts, total, _),) = parts
    assert (labels, key, bounds, counts, total) == ({"method": "Get"}, OK, (0.01, 1.0), [1, 0, 1], 2.005)


def test_reset_zeroes_every_part_and_keeps_them() -> None:
    """A reset (forked child) zeroes the series and its parts; a part held by an outcome keeps counting."""
    _, family = _family()
    series = family.labels("Get")
    part = series.for_code(OK)
    part.observe(0.005)
    family.reset()
    assert series.count == 0
    part.observe(0.005)
    assert series.count == 1
    assert series.for_code(OK) is part
