"""A process that forks after setup() (multiprocessing's ``fork`` start method) exports spans from the child.

The child does not flush: its spans must go out through the export worker hoptel restarts after the fork, while
the child is still alive. The parent keeps exporting too, and children forked while the parent's worker is in the
middle of exporting still export (the collector runs in a spawned process, see ``reliability_remote``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from multiprocessing.synchronize import Event as EventType

import pytest
from reliability_remote import RemoteReceiver
from reliability_support import metric_value

import hoptel

CHILD_SPANS = 50
CHILDREN = 4
WAIT_S = 20.0
MAX_PARENT_SPANS = 2_000_000
# Python 3.12+ warns when forking a process that runs threads (hoptel's worker, gRPC's); forking is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteReceiver]:
    """One receiver in a spawned process for the module's tests (span names keep the tests apart)."""
    with RemoteReceiver() as receiver:
        yield receiver


def _child(tel: hoptel.Telemetry, name: str, received: EventType) -> None:
    """Runs in the forked child: end spans, then wait (without flushing) until the parent saw them arrive."""
    tracer = tel.tracer_provider.get_tracer("reliability")
    for index in range(CHILD_SPANS):
        with tracer.start_as_current_span(f"{name}-{index}") as span:
            span.set_attribute("rel.pid", os.getpid())
    os._exit(0 if received.wait(WAIT_S) else 3)


def _fork_and_check(tel: hoptel.Telemetry, remote: RemoteReceiver, name: str) -> None:
    """Fork a child that ends ``CHILD_SPANS`` spans; they must all arrive, from the child's pid, while it runs."""
    context = multiprocessing.get_context("fork")
    received = context.Event()
    child = context.Process(target=_child, args=(tel, name, received), name=name)
    child.start()
    try:
        spans = remote.spans(f"{name}-", CHILD_SPANS, timeout=WAIT_S)
    finally:
        received.set()
        child.join(WAIT_S)
    assert child.exitcode == 0
    assert len(spans) == CHILD_SPANS, f"{len(spans)} of the child's {CHILD_SPANS} spans arrived"
    assert {pid for _, _, pid in spans} == {child.pid}
    assert len({span_id for _, span_id, _ in spans}) == CHILD_SPANS


def test_forked_child_exports_spans(remote: RemoteReceiver, protocol: str) -> None:
    """A child forked after setup() exports its spans without a flush; the parent goes on exporting as well."""
    name = f"idle-{protocol}"
    with hoptel.setup(
        "forking",
        environ={},
        exporter_otlp_protocol=protocol,
        exporter_otlp_endpoint=remote.endpoint(protocol),
        bsp_schedule_delay=50,
        metrics_addr="off",
    ) as tel:
        tracer = tel.tracer_provider.get_tracer("reliability")
        tracer.start_span(f"{name}-parent-before").end()
        assert len(remote.spans(f"{name}-parent-before", 1, timeout=WAIT_S)) == 1
        _fork_and_check(tel, remote, f"{name}-child")
        tracer.start_span(f"{name}-parent-after").end()
        assert len(remote.spans(f"{name}-parent-after", 1, timeout=WAIT_S)) == 1


def test_fork_while_the_parent_exports(remote: RemoteReceiver, protocol: str) -> None:
    """Children forked while the parent's worker is busy exporting still export; the parent loses nothing."""
    name = f"busy-{protocol}"
    with hoptel.setup(
        "forking-busy",
        environ={},
        exporter_otlp_protocol=protocol,
        exporter_otlp_endpoint=remote.endpoint(protocol),
        bsp_schedule_delay=50,
        bsp_max_queue_size=MAX_PARENT_SPANS,
        metrics_addr="off",
    ) as tel:
        tracer = tel.tracer_provider.get_tracer("reliability")
        stop = threading.Event()
        made = [0]

        def produce() -> None:
            for _ in range(MAX_PARENT_SPANS):
                if stop.is_set():
                    return
                tracer.start_span(f"{name}-parent").end()
                made[0] += 1

        producer = threading.Thread(target=produce)
        producer.start()
        try:
            remote.spans(f"{name}-parent", 1, timeout=WAIT_S)  # the parent's worker is exporting from now on
            for number in range(CHILDREN):
                _fork_and_check(tel, remote, f"{name}-child-{number}")
        finally:
            stop.set()
            producer.join(WAIT_S)
        assert tel.force_flush(timeout=WAIT_S)
        assert metric_value(tel, "hoptel_spans_dropped_total") == 0
        assert len(remote.spans(f"{name}-parent", made[0], timeout=WAIT_S)) == made[0]
