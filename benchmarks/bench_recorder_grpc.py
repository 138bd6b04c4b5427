"""Cost of one gRPC unary hop through the per-hop recorder and the interceptors, and of one metric observation.

Run: ``python benchmarks/bench_recorder_grpc.py``. Prints CPU microseconds per operation (all threads, so
exporting the sampled spans is included; best of several rounds):

- recorder, client side: ``start_grpc_client`` (span started, context injected into metadata) + ``finish``,
  sampled (span ended and queued for export, histogram observed with an exemplar) and unsampled (context still
  injected, histogram observed, no span recorded);
- recorder, server side: ``start_grpc_server`` (context extracted from a ``traceparent``) + ``finish``, likewise;
- the sync client interceptor's ``intercept_unary_unary``, a unary call through ``hoptel.instrument_channel``, and
  the sync server interceptor's ``intercept_service`` plus the wrapped handler, around a continuation / channel /
  handler that does nothing (no network, so this is their own cost on top of the recorder; grpcio's own
  ``intercept_channel`` plumbing, which the interceptor rides on, is not included);
- single metric operations: a counter increment and a histogram observation with and without an exemplar.

Sampled spans go through hoptel's real batch processor into an exporter that discards them; each round ends with a
flush, inside the measured time, so no span is dropped and its encoding is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from microbench import bench_telemetry, best_cpu_us  # benchmarks/ (the script's folder) is on sys.path

import hoptel
from hoptel.interceptors.grpc.names import UNARY
from hoptel.interceptors.grpc.shared import ClientCallDetails
from hoptel.interceptors.recorder import HopRecorder

CALLS_PER_ROUND = 5_000  # microbench.best_cpu_us's default
METHOD = "/shop.Orders/Get"
TARGET = "orders.internal:50051"
OK = grpc.StatusCode.OK
INCOMING = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), ("user-agent", "grpc-go"))
OUTGOING = (("x-request-id", "42"),)


class DoneCall:
    """What grpcio's blocking continuation returns: a finished call (here: OK, with a response)."""

    def done(self) -> bool:
        return True

    def code(self) -> grpc.StatusCode:
        return OK

    def result(self) -> bytes:
        return b"response"


class NoNetworkChannel:
    """A channel whose unary multicallable answers at once (what ``instrument_channel`` wraps, minus grpcio)."""

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        done = DoneCall()

        class Method:
            def with_call(self, request: bytes, *options: Any, **keywords: Any) -> tuple[bytes, DoneCall]:
                return b"response", done

        return Method()


class Context:
    """The parts of grpcio's sync ServicerContext the server interceptor reads."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return INCOMING

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


class Details(grpc.HandlerCallDetails):
    def __init__(self) -> None:
        self.method = METHOD
        self.invocation_metadata = INCOMING


def telemetry(sampler: str) -> hoptel.Telemetry:
    return bench_telemetry(sampler, queue_size=4 * CALLS_PER_ROUND)


def hops(tel: hoptel.Telemetry) -> dict[str, Callable[[], object]]:
    """The operations to time for one Telemetry."""
    recorder = HopRecorder.of(tel)
    client_route = recorder.grpc_route("client", UNARY, METHOD)
    server_route = recorder.grpc_route("server", UNARY, METHOD)
    peer = {"server.address": "orders.internal", "server.port": 50051}

    def recorder_client() -> None:
        started = recorder.start_grpc_client(client_route, OUTGOING, peer)
        assert started is not None
        hop, _ = started
        hop.finish(OK)

    def recorder_server() -> None:
        hop = recorder.start_grpc_server(server_route, INCOMING)
        hop.finish(OK)

    client = hoptel.client_interceptor(tel, target=TARGET)
    details = ClientCallDetails(METHOD, None, OUTGOING, None, None, None)
    done = DoneCall()

    def continuation(new_details: Any, request: bytes) -> DoneCall:
        return done

    def client_interceptor() -> None:
        client.intercept_unary_unary(continuation, details, b"request")

    channel: Any = NoNetworkChannel()
    unary = hoptel.instrument_channel(channel, tel, target=TARGET).unary_unary(METHOD)

    def instrumented_channel() -> None:
        unary(b"request", metadata=OUTGOING)

    server = hoptel.server_interceptor(tel)
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: b"response")
    call_details = Details()
    context = Context()

    def server_interceptor() -> None:
        wrapped: Any = server.intercept_service(lambda _: handler, call_details)
        wrapped.unary_unary(b"request", context)

    return {
        "recorder client hop": recorder_client,
        "recorder server hop": recorder_server,
        "client interceptor, unary (no network)": client_interceptor,
        "instrumented channel, unary (no network)": instrumented_channel,
        "server interceptor + handler, unary (no network)": server_interceptor,
    }


def main() -> None:
    results: dict[str, float] = {}
    for label, sampler in (("sampled", "always_on"), ("unsampled", "always_off")):
        tel = telemetry(sampler)
        try:
            for name, call in hops(tel).items():
                results[f"{name}, {label}"] = best_cpu_us(call, tel.force_flush)
            dropped = tel.registry.get_sample_value("hoptel_spans_dropped_total") or 0.0
        finally:
            tel.shutdown()
        if dropped:
            raise SystemExit(f"{dropped:.0f} spans were dropped; the sampled timing would be wrong")

    tel = telemetry("always_off")
    try:
        route = HopRecorder.of(tel).grpc_route("server", UNARY, METHOD)
        trace_id = "0af7651916cd43dd8448eb211c80319c"
        results["started tick"] = best_cpu_us(route.started.tick)
        results["counter inc"] = best_cpu_us(route.started.inc)
        ok = route.outcome(OK).histogram  # observing it also counts the call handled (an ObservationCount)
        results["histogram observe (handled by code)"] = best_cpu_us(lambda: ok.observe(0.0003))
        results["histogram observe with exemplar"] = best_cpu_us(lambda: ok.observe(0.0003, trace_id))
    finally:
        tel.shutdown()

    width = max(len(name) for name in results)
    print(f"{'operation':<{width}}  {'µs/op':>7}")
    for name, value in results.items():
        print(f"{name:<{width}}  {value:>7.2f}")


if __name__ == "__main__":
    main()
