"""The tracemalloc parts: bytes per queued span, per metric series and per in-flight RPC.

Each figure is a difference of tracemalloc's traced bytes (``get_traced_memory()[0]``, after ``gc.collect()``)
between two states that differ only in what is counted, so start-up, imports and first-call caches cancel out.
tracemalloc sees the Python heap (every object hoptel makes); gRPC's C core allocates with ``malloc`` and is not
seen, which is why the per-RPC parts subtract a bare run: what is left is hoptel's share of the Python heap.
"""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import grpc

from benchmarks.memory.echo import (
    PAYLOAD,
    Gate,
    HeldCalls,
    method_name,
    open_channel,
    queue_length,
    serve,
    setup_env,
    telemetry,
    unary,
)
from hoptel.receiver import OTLPReceiver

__all__ = [
    "InFlight",
    "MetricSeries",
    "QueuedSpans",
    "Retained",
    "in_flight",
    "metric_series",
    "queued_spans",
    "retained",
]

_names = itertools.count()


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@contextmanager
def _tracing() -> Iterator[None]:
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


@dataclass(frozen=True)
class QueuedSpans:
    """Bytes per finished span waiting in hoptel's batch queue."""

    rpcs: int
    spans_first: int  # spans queued by the first N RPCs
    spans_second: int  # spans queued by the next N
    bytes_second: int  # traced bytes the second N RPCs added
    bytes_per_span: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def queued_spans(n: int = 5000, warmup: int = 200) -> QueuedSpans:
    """N sampled RPCs (a CLIENT and a SERVER span each) with nothing exported, then N more; bytes per span between.

    Both hops are instrumented and every RPC is sampled, so each RPC queues two spans; the queue holds up to a
    million spans and exports only when all of them make one batch, or after an hour.
    """
    with (
        OTLPReceiver() as rx,
        telemetry(setup_env(rx.grpc_endpoint, hold_spans=True)) as tel,
        serve(tel) as target,
        open_channel(target, tel) as channel,
    ):
        call = unary(channel, "Echo")
        for _ in range(warmup):
            call(PAYLOAD)
        tel.force_flush(10.0)
        with _tracing():
            start = queue_length(tel)
            for _ in range(n):
                call(PAYLOAD)
            middle, traced_middle = queue_length(tel), _traced()
            for _ in range(n):
                call(PAYLOAD)
            end, traced_end = queue_length(tel), _traced()
    spans = end - middle
    return QueuedSpans(
        rpcs=n,
        spans_first=middle - start,
        spans_second=spans,
        bytes_second=traced_end - traced_middle,
        bytes_per_span=(traced_end - traced_middle) / spans if spans else float("nan"),
    )


@dataclass(frozen=True)
class Retained:
    """Bytes left on the heap per finished, unsampled RPC on one method: a leak check (it should be about 0)."""

    rpcs: int
    bytes_second: int
    bytes_per_rpc: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def retained(n: int = 5000, warmup: int = 200) -> Retained:
    """N unsampled RPCs through both interceptors, then N more: traced bytes the second N left behind, over N."""
    with (
        OTLPReceiver() as rx,
        telemetry(setup_env(rx.grpc_endpoint, sampler="always_off")) as tel,
        serve(tel) as target,
        open_channel(target, tel) as channel,
    ):
        call = unary(channel, "Echo")
        for _ in range(warmup):
            call(PAYLOAD)
        with _tracing():
            for _ in range(n):
                call(PAYLOAD)
            middle = _traced()
            for _ in range(n):
                call(PAYLOAD)
            end = _traced()
    return Retained(rpcs=n, bytes_second=end - middle, bytes_per_rpc=(end - middle) / n)


@dataclass(frozen=True)
class MetricSeries:
    """Bytes per new method, i.e. per new label combination of hoptel's RPC metric families."""

    methods: int
    label_sets_per_method: int  # label combinations one new method adds, both sides (one per metric family)
    lines_per_method: int  # exposition lines (samples, histogram buckets included) one new method adds, both sides
    bare: float  # bytes per new method without instrumentation (grpc's own)
    server: float  # hoptel server interceptor, bare client
    both: float  # hoptel on both sides
    hoptel_server: float  # server - bare
    hoptel_client: float  # both - server
    hoptel_both: float  # both - bare
    bytes_per_label_set: float  # hoptel_both over the label combinations one method adds
    bytes_per_line: float  # hoptel_both over the exposition lines one method adds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_new_method(channel: grpc.Channel, n: int, prefix: str) -> float:
    """Traced bytes per method over the second of two runs of one RPC on each of ``n`` new methods."""

    def one_round() -> None:
        for _ in range(n):
            unary(channel, f"{prefix}{next(_names):06d}")(PAYLOAD)

    one_round()  # first-use costs of this channel, server and interceptors
    before = _traced()
    one_round()
    return (_traced() - before) / n


def _samples_of(tel: Any, method: str) -> dict[str, int]:
    """Samples (exposition lines) and label sets (one per family) carrying ``method``, per side (client / server)."""
    short = method.rsplit("/", 1)[-1]
    counts = {"client": 0, "server": 0, "client_sets": 0, "server_sets": 0}
    for family in tel.registry.collect():
        side = "client" if "client" in family.name else "server" if "server" in family.name else None
        if side is None:
            continue
        lines = sum(1 for s in family.samples if short in s.labels.values())
        counts[side] += lines
        counts[f"{side}_sets"] += 1 if lines else 0
    return counts


def metric_series(n: int = 1000) -> MetricSeries:
    """One RPC on each of N new methods, after N others: bytes per method, bare, server-only and both sides.

    The spans are unsampled (``always_off``): what grows is the metrics, plus any per-method state.
    """
    with OTLPReceiver() as rx, telemetry(setup_env(rx.grpc_endpoint, sampler="always_off")) as tel, _tracing():
        with serve(None) as target, open_channel(target, None) as channel:
            bare = _per_new_method(channel, n, "Bare")
        with serve(tel) as target, open_channel(target, None) as channel:
            server = _per_new_method(channel, n, "Server")
        with serve(tel) as target, open_channel(target, tel) as channel:
            both = _per_new_method(channel, n, "Both")
            probe = method_name("Probe")
            unary(channel, "Probe")(PAYLOAD)
        samples = _samples_of(tel, probe)
    lines = samples["client"] + samples["server"]
    sets = samples["client_sets"] + samples["server_sets"]
    return MetricSeries(
        methods=n,
        label_sets_per_method=sets,
        lines_per_method=lines,
        bare=bare,
        server=server,
        both=both,
        hoptel_server=server - bare,
        hoptel_client=both - server,
        hoptel_both=both - bare,
        bytes_per_label_set=(both - bare) / sets if sets else float("nan"),
        bytes_per_line=(both - bare) / lines if lines else float("nan"),
    )


@dataclass(frozen=True)
class InFlight:
    """Bytes held per RPC in flight (the handler waiting), by hoptel's per-RPC state."""

    rpcs: int
    bare: float  # bytes per held RPC, no instrumentation (grpc's Python objects, the pool's frames)
    server: float  # hoptel server interceptor, bare client
    both: float  # hoptel on both sides
    hoptel_server: float
    hoptel_client: float
    hoptel_both: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_held_rpc(channel: grpc.Channel, gate: Gate, k: int, tel: Any) -> float:
    call = unary(channel, "Hold")

    def hold_round(measure: bool) -> float:
        gate.close()
        before = _traced() if measure else 0
        held = HeldCalls(call, k)
        gate.wait_for(k)
        during = _traced() if measure else 0
        gate.release()
        held.result()
        del held
        return (during - before) / k

    hold_round(measure=False)  # the pool's threads, first-use caches
    if tel is not None:
        tel.force_flush(10.0)
    return hold_round(measure=True)


def in_flight(k: int = 200) -> InFlight:
    """K sampled RPCs held in the server handler at once: bytes per RPC with them in flight, minus before.

    The server's pool has K + 4 threads, so every call reaches its handler; the client starts them with
    ``.future()``. Every RPC is sampled (its spans are open while it is in flight).
    """
    threads = k + 4
    with OTLPReceiver() as rx, telemetry(setup_env(rx.grpc_endpoint)) as tel, _tracing():
        results: dict[str, float] = {}
        for variant, server_tel, client_tel in (("bare", None, None), ("server", tel, None), ("both", tel, tel)):
            gate = Gate()
            with serve(server_tel, threads=threads, gate=gate) as target, open_channel(target, client_tel) as ch:
                results[variant] = _per_held_rpc(ch, gate, k, server_tel)
    return InFlight(
        rpcs=k,
        bare=results["bare"],
        server=results["server"],
        both=results["both"],
        hoptel_server=results["server"] - results["bare"],
        hoptel_client=results["both"] - results["server"],
        hoptel_both=results["both"] - results["bare"],
    )
