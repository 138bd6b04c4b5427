"""The per-call metric record target: what recording one unary RPC's metrics costs, measured in this process.

One call updates its route's series as the recorder does: ``grpc_*_started_total`` when it starts (a lock-free
tick), the latency histogram of its status code (with a trace-id exemplar, as for a sampled call) when it ends;
``grpc_*_handled_total`` and the unary message counters read that histogram's count and cost nothing per call.
Measured on a real ``GrpcRoute`` of a real ``HopRecorder``, as process CPU time over many calls
(``benchmarks/microbench.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import hoptel
from benchmarks.microbench import best_cpu_us
from hoptel.interceptors.grpc.names import UNARY
from hoptel.interceptors.recorder import HopRecorder
from hoptel.metrics import HistogramChild

__all__ = ["metric_record_us"]

_TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C


def metric_record_us(make_histogram: Callable[[Sequence[float]], HistogramChild] | None = None) -> float:
    """CPU µs to record one unary RPC's metrics (started, handled, latency with exemplar), best of several rounds.

    ``make_histogram``: builds the series to observe instead of the real one, from the real one's bucket bounds
    (to compare histogram implementations on the same record).
    """
    telemetry = hoptel.setup(
        "bench-metrics", environ={}, install_global=False, metrics_addr="off", traces_exporter="none", log="warning"
    )
    try:
        route = HopRecorder.of(telemetry).grpc_route("server", UNARY, "/hoptel.bench.Echo/Unary")
        ok = route.ok
        if ok is None:  # pragma: no cover - a known route always has its OK outcome
            raise RuntimeError("the route has no OK outcome")
        tick, histogram = route.started.tick, ok.histogram
        if make_histogram is not None:
            histogram = make_histogram(histogram._upper)  # the same bounds as the real series

        def record() -> None:
            tick()
            histogram.observe(0.0003, _TRACE_ID)

        return best_cpu_us(record, calls=20_000)
    finally:
        telemetry.shutdown()
