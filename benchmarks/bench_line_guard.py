"""What the log pipeline's whole-line guard and reconfiguration watch cost the application.

Run: ``python benchmarks/bench_line_guard.py``. Prints nanoseconds per call (best of several rounds):

- ``print()`` of a three-part line and one whole-line ``write()``, to ``os.devnull`` directly and through a
  :class:`~hoptel.logs.line_guard.LineGuard` over it (what ``sys.stdout`` is while the pipeline runs);
- ``logger.info`` with the pipeline running (stdout is ``os.devnull``), as hoptel leaves the record factory (the
  reconfiguration watch swaps one in only between a reconfiguration and the next record), and with a chained
  factory that checks a flag on every record, the alternative it avoids.
"""

from __future__ import annotations

import logging
import os
import sys
import timeit
from collections.abc import Callable
from typing import Any

from hoptel.logs import LogPipeline
from hoptel.logs.line_guard import LineGuard

CALLS = 5_000  # per round; below the queue size, so a round never fills the queue
ROUNDS = 9


def best_ns(call: Callable[[], object], between: Callable[[], object] = lambda: None) -> float:
    """Best per-call time in nanoseconds over ROUNDS rounds, calling ``between`` after each round."""
    timer = timeit.Timer(call)
    best = float("inf")
    for _ in range(ROUNDS):
        best = min(best, timer.timeit(CALLS) / CALLS)
        between()
    return best * 1e9


def main() -> None:
    devnull = open(os.devnull, "w")  # noqa: SIM115 - kept open for the whole run
    guard = LineGuard(devnull)
    results = {
        "print('SPAN', 1, 2) to devnull": best_ns(lambda: print("SPAN", 1, 2, file=devnull)),
        "print('SPAN', 1, 2) through LineGuard": best_ns(lambda: print("SPAN", 1, 2, file=guard)),
        "write('a whole line\\n') to devnull": best_ns(lambda: devnull.write("a whole line\n")),
        "write('a whole line\\n') through LineGuard": best_ns(lambda: guard.write("a whole line\n")),
    }

    real_stdout = sys.stdout
    sys.stdout = devnull
    log = logging.getLogger("bench.app")
    pipeline = LogPipeline.start(directives="info", service_name="bench")  # writes to sys.stdout, guarded
    try:
        factory = logging.getLogRecordFactory()
        results["logger.info, pipeline running (record factory untouched)"] = best_ns(
            lambda: log.info("user %s", 42), pipeline.flush
        )
        flag = [False]

        def checking(*args: Any, **kwargs: Any) -> logging.LogRecord:
            if flag[0]:
                pass
            return factory(*args, **kwargs)

        logging.setLogRecordFactory(checking)
        results["logger.info, with a flag-checking chained factory"] = best_ns(
            lambda: log.info("user %s", 42), pipeline.flush
        )
        logging.setLogRecordFactory(factory)
        dropped = pipeline.dropped
    finally:
        pipeline.shutdown(timeout=30.0)
        sys.stdout = real_stdout
    if dropped:
        raise SystemExit(f"{dropped} records were dropped; the logger timings would be wrong")
    width = max(len(name) for name in results)
    for name, value in results.items():
        print(f"{name:<{width}}  {value:8.0f} ns")


if __name__ == "__main__":
    main()
