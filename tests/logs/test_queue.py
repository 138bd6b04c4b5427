"""The bounded queue handler: never blocks the caller, drops and counts when full, drains on shutdown."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from hoptel.logs import LogPipeline
from hoptel.logs.queue_handler import BoundedQueueHandler
from hoptel.metrics import CounterChild

PipelineFactory = Callable[..., LogPipeline]


class BlockingStream(io.StringIO):
    """A stream whose ``write()`` stalls the log worker until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(60)
        return super().write(text)


@pytest.fixture
def blocking_stream() -> Iterator[BlockingStream]:
    """A BlockingStream, released at teardown so no worker stays stuck."""
    stream = BlockingStream()
    yield stream
    stream.release.set()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Parse every line as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in text.splitlines() if line]


def test_full_queue_drops_and_counts_while_the_worker_is_stalled(
    start_pipeline: PipelineFactory, blocking_stream: BlockingStream
) -> None:
    """With the writer stuck in write(), calls keep returning: the queue fills, then records are dropped and counted."""
    counter = CounterChild()
    pipeline = start_pipeline(stream=blocking_stream, queue_size=5, dropped_counter=counter)
    log = logging.getLogger("orders.queue")
    log.warning("first")  # the worker takes it and blocks inside write()
    assert blocking_stream.entered.wait(10)
    for n in range(5):
        log.warning("queued %d", n)
    for n in range(3):
        log.warning("dropped %d", n)
    # Every call above returned although the worker is still stuck writing "first".
    assert not blocking_stream.release.is_set()
    assert pipeline.handler.queued == 5
    assert pipeline.dropped == 3
    assert counter.value == 3.0
    blocking_stream.release.set()
    assert pipeline.shutdown(timeout=10.0)
    messages = [line["message"] for line in json_lines(blocking_stream.getvalue())]
    assert messages == ["first", *(f"queued {n}" for n in range(5))]


def test_mutable_argument_is_captured_before_the_worker_renders(
    start_pipeline: PipelineFactory, blocking_stream: BlockingStream
) -> None:
    """A list logged and then mutated while the worker is busy shows its value at the time of the call."""
    pipeline = start_pipeline(stream=blocking_stream)
    log = logging.getLogger("orders.queue")
    log.warning("first")
    assert blocking_stream.entered.wait(10)
    items = ["a"]
    log.warning("items %s", items)
    items.append("b")
    blocking_stream.release.set()
    assert pipeline.shutdown(timeout=10.0)
    assert json_lines(blocking_stream.getvalue())[1]["message"] == "items ['a']"


def test_trace_ids_are_taken_on_the_calling_thread(
    start_pipeline: PipelineFactory, blocking_stream: BlockingStream
) -> None:
    """The ids written are those of the span current when logging, even though the worker writes later."""
    pipeline = start_pipeline(stream=blocking_stream)
    tracer = TracerProvider().get_tracer("test")
    log = logging.getLogger("orders.queue")
    log.warning("first")
    assert blocking_stream.entered.wait(10)
    with tracer.start_as_current_span("a") as span_a:
        log.warning("in a")
    with tracer.start_as_current_span("b") as span_b:
        log.warning("in b")
    blocking_stream.release.set()
    assert pipeline.shutdown(timeout=10.0)
    lines = json_lines(blocking_stream.getvalue())
    assert "span_id" not in lines[0]
    assert lines[1]["span_id"] == format(span_a.get_span_context().span_id, "016x")
    assert lines[2]["span_id"] == format(span_b.get_span_context().span_id, "016x")
    assert lines[2]["trace_id"] == format(span_b.get_span_context().trace_id, "032x")


def test_ten_thousand_records_are_all_written_by_shutdown(start_pipeline: PipelineFactory) -> None:
    """10,000 records logged back to back are all present, in order, once shutdown() returns."""
    stream = io.StringIO()
    pipeline = start_pipeline(stream=stream, queue_size=10_000)
    log = logging.getLogger("orders.bulk")
    for n in range(10_000):
        log.info("record %d", n)
    assert pipeline.shutdown(timeout=30.0)
    lines = json_lines(stream.getvalue())
    assert [line["message"] for line in lines] == [f"record {n}" for n in range(10_000)]
    assert pipeline.dropped == 0


def test_shutdown_times_out_on_a_stuck_writer_and_reports_it(
    start_pipeline: PipelineFactory, blocking_stream: BlockingStream
) -> None:
    """shutdown() returns False, instead of hanging, when the writer cannot finish within the timeout."""
    pipeline = start_pipeline(stream=blocking_stream)
    logging.getLogger("orders.queue").warning("stuck")
    assert blocking_stream.entered.wait(10)
    assert pipeline.shutdown(timeout=0.05) is False
    assert pipeline.shutdown(timeout=0.05) is False  # idempotent: the same answer
    assert pipeline.handler not in logging.getLogger().handlers
    blocking_stream.release.set()
    pipeline.handler.worker.join(10)
    assert not pipeline.handler.worker.is_alive()


def test_records_after_stop_are_ignored_not_counted() -> None:
    """After stop() the handler accepts calls but neither queues nor counts them as dropped."""
    written: list[int] = []
    counter = CounterChild()
    handler = BoundedQueueHandler(lambda batch: written.append(len(batch)), 10, counter)
    record = logging.makeLogRecord({"msg": "m"})
    handler.handle(record)
    assert handler.stop(10.0)
    handler.handle(record)
    handler.close()
    assert written == [1]
    assert handler.dropped == 0
    assert counter.value == 0.0


def test_drain_waits_for_everything_queued_before_it() -> None:
    """drain() returns once every earlier record reached the sink, in batches no larger than batch_size."""
    batches: list[int] = []
    handler = BoundedQueueHandler(lambda batch: batches.append(len(batch)), 1000, batch_size=7)
    for n in range(50):
        handler.handle(logging.makeLogRecord({"msg": f"m{n}"}))
    assert handler.drain(10.0)
    assert sum(batches) == 50
    assert max(batches) <= 7
    handler.close()


def test_a_failing_sink_is_reported_once_and_the_worker_keeps_going(capfd: object) -> None:
    """An exception in the sink does not kill the worker; later batches are still delivered."""
    delivered: list[str] = []

    def sink(batch: list[tuple[logging.LogRecord, str | None, object]]) -> None:
        if batch[0][0].msg == "bad":
            raise RuntimeError("sink failed")
        delivered.extend(str(entry[0].msg) for entry in batch)

    handler = BoundedQueueHandler(sink, 100)  # type: ignore[arg-type]  # the test sink ignores span contexts
    handler.handle(logging.makeLogRecord({"msg": "bad"}))
    assert handler.drain(10.0)
    handler.handle(logging.makeLogRecord({"msg": "good"}))
    assert handler.stop(10.0)
    handler.close()
    assert delivered == ["good"]


def test_handler_filters_still_apply() -> None:
    """A filter added to the handler keeps records out of the queue."""
    seen: list[str] = []
    handler = BoundedQueueHandler(lambda batch: seen.extend(str(e[0].msg) for e in batch), 100)
    handler.addFilter(lambda record: record.msg != "secret")
    for msg in ("public", "secret"):
        handler.handle(logging.makeLogRecord({"msg": msg}))
    assert handler.stop(10.0)
    handler.close()
    assert seen == ["public"]
