"""The gate's program, run under callgrind: hoptel's hop path in tight loops, no network, one thread counted.

``python -m benchmarks.instructions.hop_loop N WARMUP MANIFEST`` runs every scenario of ``SCENARIOS``: ``WARMUP``
calls, then ``mark_phase()``, ``N`` calls, ``mark_phase()``, ``2N`` calls, ``mark_phase()``. Run with
``--dump-before=sched_get_priority_max``, callgrind writes the calling thread's count at each mark, so each
scenario leaves one dump of ``N`` calls and one of ``2N``; ``(count(2N) - count(N)) / N`` is exact per call, with
whatever a phase pays once (the marks, the seeding) cancelled. ``MANIFEST`` receives the scenario names in order.

Determinism: ``PYTHONHASHSEED`` is fixed by the launcher; ``random`` (which draws hoptel's trace and span ids) is
seeded before every phase, so the two phases of a scenario start from the same ids; the cyclic garbage collector
is off during the phases (collected before them); the batch exporter never wakes during a loop (its batch size and
queue exceed every loop, its delay is hours), so only the calling thread runs, and only it is counted. Sampled
spans are exported (kept) after the hops' phases, outside the counts; the ``encode`` scenario counts their OTLP
encoding on the calling thread.
"""

from __future__ import annotations

import gc
import json
import random
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import hoptel
from benchmarks.instructions.callgrind import mark_phase
from hoptel.hop_exporters import HopSpanExporter
from hoptel.interceptors.grpc.names import UNARY
from hoptel.interceptors.recorder import HopRecorder

__all__ = ["ENCODE_BATCH", "SCENARIOS", "KeepExporter", "build_scenarios", "count_phases", "gate_telemetry", "main"]

METHOD = "/shop.Orders/Get"
TARGET = "orders.internal:50051"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
OUTGOING = (("x-request-id", "42"),)
ENCODE_BATCH = 8
"""Spans per ``encode`` call (4 client, 4 server); the gate reports the encoding per span."""
_OK = grpc.StatusCode.OK
_QUEUE = 1_000_000
_SEED = 16

SCENARIOS = (
    "empty",
    "client_hop sampled",
    "server_hop sampled",
    "client_channel sampled",
    "server_interceptor sampled",
    "encode sampled",
    "client_hop unsampled",
    "server_hop unsampled",
    "client_channel unsampled",
    "server_interceptor unsampled",
)
"""Every scenario, in the order they run. ``empty`` is the loop itself (subtracted from the others)."""


class KeepExporter(HopSpanExporter, SpanExporter):
    """Takes hop spans (the fast path a real OTLP setup takes) and keeps them, so they can be encoded on demand."""

    accepts_hop_spans = True

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Keep ``spans``."""
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The OTLP request body for ``spans``, as hoptel's OTLP exporters build it."""
        encoder = self._encoder
        if encoder is None:
            raise RuntimeError("the exporter has no resource: hoptel.setup() did not hand it one")
        return encoder.encode(spans)


class _DoneCall:
    """What grpcio's blocking call returns with ``with_call``: a finished OK call."""

    def done(self) -> bool:
        return True

    def code(self) -> grpc.StatusCode:
        return _OK

    def result(self) -> bytes:
        return b"response"


class _AnswerAtOnce:
    """A unary multicallable that answers without a network."""

    def __init__(self) -> None:
        self._done = _DoneCall()

    def with_call(self, request: bytes, *args: Any, **kwargs: Any) -> tuple[bytes, _DoneCall]:
        return b"response", self._done

    def __call__(self, request: bytes, *args: Any, **kwargs: Any) -> bytes:
        return b"response"


class _NoNetworkChannel:
    """The channel ``instrument_channel`` wraps, minus grpcio."""

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _AnswerAtOnce:
        return _AnswerAtOnce()


class _ServicerContext:
    """The parts of grpcio's sync ``ServicerContext`` the server interceptor reads."""

    def __init__(self, incoming: tuple[tuple[str, str], ...]) -> None:
        self._incoming = incoming

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._incoming

    def peer(self) -> str:
        return "ipv4:10.0.0.7:53412"

    def is_active(self) -> bool:
        return True

    def time_remaining(self) -> float:
        return 30.0

    def code(self) -> None:
        return None

    def details(self) -> None:
        return None


class _CallDetails(grpc.HandlerCallDetails):
    def __init__(self, incoming: tuple[tuple[str, str], ...]) -> None:
        self.method = METHOD
        self.invocation_metadata = incoming


def gate_telemetry(sampler: str, exporter: KeepExporter) -> hoptel.Telemetry:
    """A Telemetry whose exporter thread never wakes during the loops (see the module docstring)."""
    return hoptel.setup(
        "hop-gate",
        span_exporter=exporter,
        environ={},
        install_global=False,
        metrics_addr="off",
        traces_sampler=sampler,
        bsp_max_queue_size=_QUEUE,
        bsp_max_export_batch_size=_QUEUE,
        bsp_schedule_delay=3_600_000,
        log="warning",
    )


def build_scenarios(telemetry: hoptel.Telemetry, sampled: bool) -> dict[str, Callable[[], object]]:
    """One hop of each kind for ``telemetry``: recorder hops, the instrumented channel, the server interceptor."""
    recorder = HopRecorder.of(telemetry)
    client_route = recorder.grpc_route("client", UNARY, METHOD)
    server_route = recorder.grpc_route("server", UNARY, METHOD)
    incoming = (("traceparent", f"00-{TRACE_ID}-b7ad6b7169203331-{'01' if sampled else '00'}"), ("user-agent", "x"))
    peer = {"server.address": "orders.internal", "server.port": 50051}
    start_client, start_server = recorder.start_grpc_client, recorder.start_grpc_server

    def client_hop() -> None:
        started = start_client(client_route, OUTGOING, peer)
        if started is None:
            raise RuntimeError("instrumentation is suppressed in the gate's loop")
        started[0].finish(_OK)

    def server_hop() -> None:
        start_server(server_route, incoming).finish(_OK)

    channel: Any = _NoNetworkChannel()
    unary = hoptel.instrument_channel(channel, telemetry, target=TARGET).unary_unary(METHOD)

    def client_channel() -> None:
        unary(b"request", metadata=OUTGOING)

    interceptor = hoptel.server_interceptor(telemetry)
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: b"response")
    details = _CallDetails(incoming)
    context = _ServicerContext(incoming)

    def server_interceptor() -> None:
        wrapped: Any = interceptor.intercept_service(lambda _: handler, details)
        wrapped.unary_unary(b"request", context)

    label = "sampled" if sampled else "unsampled"
    return {
        f"client_hop {label}": client_hop,
        f"server_hop {label}": server_hop,
        f"client_channel {label}": client_channel,
        f"server_interceptor {label}": server_interceptor,
    }


def _loop(call: Callable[[], object], count: int) -> None:
    for _ in range(count):
        call()


def count_phases(call: Callable[[], object], n: int, warmup: int) -> None:
    """Warm up, then the two counted phases between three marks, each the same seeding and a loop.

    The cyclic garbage collector is off during the phases: when it runs depends on everything the process
    allocated before (here, the spans piling up in the export queue), not on the hop.
    """
    _loop(call, warmup)
    gc.collect()
    gc.disable()
    try:
        mark_phase()
        for calls in (n, 2 * n):
            random.seed(_SEED)
            _loop(call, calls)
            mark_phase()
    finally:
        gc.enable()


def main(argv: Sequence[str] | None = None) -> None:
    """Run every scenario under the marks; write the scenario names, in order, to the manifest."""
    args = list(sys.argv[1:] if argv is None else argv)
    n, warmup, manifest = int(args[0]), int(args[1]), Path(args[2])
    exporters = {"sampled": KeepExporter(), "unsampled": KeepExporter()}
    telemetries = {
        label: gate_telemetry("parentbased_always_on" if label == "sampled" else "parentbased_always_off", exporter)
        for label, exporter in exporters.items()
    }
    calls: dict[str, Callable[[], object]] = {"empty": lambda: None}
    calls.update(build_scenarios(telemetries["sampled"], sampled=True))
    calls.update(build_scenarios(telemetries["unsampled"], sampled=False))
    ran: list[str] = []
    try:
        for name in SCENARIOS:
            if name == "encode sampled":
                telemetries["sampled"].force_flush()
                kept = exporters["sampled"].spans
                client = [s for s in kept if s.kind.name == "CLIENT"][: ENCODE_BATCH // 2]
                server = [s for s in kept if s.kind.name == "SERVER"][: ENCODE_BATCH // 2]
                batch = client + server
                if len(batch) != ENCODE_BATCH:
                    raise RuntimeError(f"expected {ENCODE_BATCH} sampled spans to encode, have {len(batch)}")
                count_phases(partial(exporters["sampled"].encode, batch), n, warmup)
            else:
                count_phases(calls[name], n, warmup)
            ran.append(name)
    finally:
        manifest.write_text(json.dumps({"n": n, "scenarios": ran}), encoding="utf-8")
        for telemetry in telemetries.values():
            telemetry.shutdown()


if __name__ == "__main__":
    main()
