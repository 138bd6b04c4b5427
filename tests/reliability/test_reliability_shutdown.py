"""shutdown(): every span queued before it reaches a healthy collector, and no span is ever lost uncounted."""

from __future__ import annotations

import threading
from collections.abc import Callable

from reliability_support import EchoCall, echo_reply, exporter_settings, metric_value

import hoptel
from hoptel.receiver import OTLPReceiver

THREADS = 4
CALLS_PER_THREAD = 300
WAIT_S = 30.0
# Bounds the producers racing shutdown(); they stop soon after shutdown() has returned.
MAX_SPANS_PER_PRODUCER = 5_000_000
SPANS_AFTER_SHUTDOWN = 1_000


def _call_from_threads(call: EchoCall, threads: int, calls: int) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for index in range(calls):
                request = f"queued-{worker}-{index}".encode()
                assert call(request, timeout=10) == echo_reply(request)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    pool = [threading.Thread(target=work, args=(worker,)) for worker in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(WAIT_S)
    assert not errors, errors[:3]


def test_every_queued_span_reaches_a_healthy_collector(
    receiver: OTLPReceiver,
    make_telemetry: Callable[..., hoptel.Telemetry],
    echo_call: Callable[[hoptel.Telemetry], EchoCall],
    protocol: str,
) -> None:
    """Spans queued behind a slow export and a long batch delay all arrive, once each, when shutdown() returns."""
    tel = make_telemetry(
        "flush-all",
        **exporter_settings(receiver, protocol),
        bsp_schedule_delay=60_000,
        bsp_max_queue_size=10_000,
        bsp_max_export_batch_size=256,
    )
    receiver.delay_s = 0.05  # each export takes a while, so the queue is busy when shutdown() comes
    call = echo_call(tel)
    _call_from_threads(call, THREADS, CALLS_PER_THREAD)
    tel.shutdown(timeout=WAIT_S)
    expected = THREADS * CALLS_PER_THREAD * 2  # a client and a server span per call
    spans = receiver.spans()
    assert len(spans) == expected
    assert len({span.span_id for span in spans}) == expected
    tags = {span.attributes["rel.request"] for span in spans if "rel.request" in span.attributes}
    assert tags == {f"queued-{w}-{i}" for w in range(THREADS) for i in range(CALLS_PER_THREAD)}
    assert metric_value(tel, "hoptel_spans_exported_total") == expected
    assert metric_value(tel, "hoptel_spans_dropped_total") == 0


def test_spans_ending_around_shutdown_are_exported_or_counted(
    receiver: OTLPReceiver, make_telemetry: Callable[..., hoptel.Telemetry], protocol: str
) -> None:
    """Under steady load, spans ending before, during and after shutdown() are all exported or counted as dropped."""
    tel = make_telemetry("racing", **exporter_settings(receiver, protocol))
    tracer = tel.tracer_provider.get_tracer("reliability")
    ended = [0] * THREADS
    returned = threading.Event()
    stop = threading.Event()
    started = threading.Barrier(THREADS + 1)

    def produce(worker: int) -> None:
        started.wait()
        for _ in range(MAX_SPANS_PER_PRODUCER):
            if stop.is_set():
                return
            tracer.start_span("racing").end()
            ended[worker] += 1

    producers = [threading.Thread(target=produce, args=(worker,)) for worker in range(THREADS)]
    for thread in producers:
        thread.start()
    started.wait()
    receiver.wait_for_spans(1, timeout=WAIT_S)
    tel.shutdown(timeout=WAIT_S)
    returned.set()
    at_return = sum(ended)
    deadline_spans = at_return + SPANS_AFTER_SHUTDOWN
    for _ in range(100_000):  # bounded wait until the producers ended spans after shutdown() returned
        if sum(ended) >= deadline_spans or not any(thread.is_alive() for thread in producers):
            break
        threading.Event().wait(0.001)
    stop.set()
    for thread in producers:
        thread.join(WAIT_S)
    assert sum(ended) > at_return, "no span ended after shutdown() returned"
    exported = metric_value(tel, "hoptel_spans_exported_total")
    dropped = metric_value(tel, "hoptel_spans_dropped_total")
    assert len(receiver.spans()) == exported
    assert exported + dropped == sum(ended)
