"""Calling-thread cost of hoptel's log pipeline: a suppressed debug call, and an emitted JSON info call.

Run: ``python benchmarks/bench_logs.py``. Prints microseconds per call (best of several rounds). The emitted
calls write to ``os.devnull``; the queue is drained between rounds so every measured call is enqueued, never
dropped (the script checks). The emitted timings include waiting for the GIL while the worker thread formats
and writes the previous records: the work leaves the request's code path, not the process.

For scale it also times the parts that are not hoptel's: the standard library building a ``LogRecord`` (the
logger's own cost, with a ``NullHandler``), hoptel's ``emit()`` alone on a prebuilt record, and the standard
library's synchronous ``StreamHandler`` with a JSON-like format string.
"""

from __future__ import annotations

import logging
import os
import timeit
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider

from hoptel.logs import LogPipeline

CALLS_PER_ROUND = 5_000  # below the queue size, so a round never fills the queue
ROUNDS = 7


def best_us(call: Callable[[], None], between: Callable[[], object] = lambda: None) -> float:
    """Best per-call time in microseconds over ROUNDS rounds, calling ``between`` after each round."""
    timer = timeit.Timer(call)
    best = float("inf")
    for _ in range(ROUNDS):
        best = min(best, timer.timeit(CALLS_PER_ROUND) / CALLS_PER_ROUND)
        between()
    return best * 1e6


def main() -> None:
    devnull = open(os.devnull, "w")  # noqa: SIM115 - kept open for the whole run
    log = logging.getLogger("bench.app")
    results: dict[str, float] = {}

    pipeline = LogPipeline.start(directives="info", log_format="json", service_name="bench", stream=devnull)
    try:
        results["suppressed debug call (level check only)"] = best_us(lambda: log.debug("user %s", 42))
        results["emitted JSON info call, no span"] = best_us(lambda: log.info("user %s", 42), pipeline.flush)
        tracer = TracerProvider().get_tracer("bench")
        with tracer.start_as_current_span("request"):
            results["emitted JSON info call, inside a span"] = best_us(
                lambda: log.info("user %s", 42, extra={"route": "/cart"}), pipeline.flush
            )
        record = logging.makeLogRecord({"name": "bench.app", "msg": "user %s", "args": (42,)})
        results["hoptel handler emit() alone, prebuilt record"] = best_us(
            lambda: pipeline.handler.emit(record), pipeline.flush
        )
        dropped = pipeline.dropped
    finally:
        pipeline.shutdown(timeout=30.0)
    if dropped:
        raise SystemExit(f"{dropped} records were dropped; the emitted timings would be wrong")

    quiet = logging.getLogger("bench.null")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    quiet.setLevel(logging.INFO)
    results["stdlib LogRecord creation only (NullHandler)"] = best_us(lambda: quiet.info("user %s", 42))

    handler = logging.StreamHandler(devnull)
    handler.setFormatter(
        logging.Formatter(
            '{"timestamp":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","message":"%(message)s"}'
        )
    )
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        results["stdlib StreamHandler, synchronous (for scale)"] = best_us(lambda: log.info("user %s", 42))
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        devnull.close()

    width = max(len(name) for name in results)
    for name, micros in results.items():
        print(f"{name:<{width}}  {micros:8.3f} µs/call")


if __name__ == "__main__":
    main()
