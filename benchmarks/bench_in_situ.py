"""What a hop's own code costs between real RPCs, against the same code in a tight loop.

Run: ``python benchmarks/bench_in_situ.py [SAMPLER]`` (default ``parentbased_always_off``; e.g. ``always_on``).

A tight loop runs the recorder's code with every cache warm; in a service, gRPC's C core runs between two hops
and the next hop starts cold. This script makes that visible in one process: a sync echo server runs in a child
process, and the calling thread alternates a real unary RPC with the code under test. It prints the calling
thread's CPU (``thread_time``) added per operation over the plain RPC (median of paired rounds, with the
interquartile range of the pairs), and the same code's cost in a tight loop:

- ``client hop``: ``start_grpc_client`` + ``finish`` (span, injected metadata, metrics), the metadata not sent;
- ``client hop, metadata sent``: the same with the injected ``traceparent`` sent on the RPC (gRPC's own cost of
  one more header is then included);
- ``server hop``: ``start_grpc_server`` from a ``traceparent`` + ``finish`` (extraction, span, context, metrics).

The hops' spans go to hoptel's batch processor and an exporter that encodes and drops them (``microbench``).
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent import futures

import grpc
from microbench import bench_telemetry  # benchmarks/ (the script's folder) is on sys.path

from hoptel.interceptors.grpc.names import UNARY
from hoptel.interceptors.recorder import HopRecorder

METHOD = "/bench.Echo/Unary"
ROUNDS = 12
OPS_PER_ROUND = 2000
TIGHT_OPS = 5_000  # fits the span queue: a sampled tight loop drops nothing
OK = grpc.StatusCode.OK


def serve(port: int) -> None:
    """The echo server (child process): answers every unary call with its request."""

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler("bench.Echo", {"Unary": grpc.unary_unary_rpc_method_handler(echo)})
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def free_port() -> int:
    """A free loopback port, found by binding port 0 (released before the server binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def thread_us(operation: Callable[[], object], count: int) -> float:
    """The calling thread's CPU µs per call of ``operation``."""
    started = time.thread_time()
    for _ in range(count):
        operation()
    return (time.thread_time() - started) / count * 1e6


def main(sampler: str) -> None:
    tel = bench_telemetry(sampler, queue_size=4 * max(OPS_PER_ROUND, TIGHT_OPS))
    recorder = HopRecorder.of(tel)
    client_route = recorder.grpc_route("client", UNARY, METHOD)
    server_route = recorder.grpc_route("server", UNARY, METHOD)
    flags = "00" if "off" in sampler else "01"
    incoming = (("traceparent", f"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-{flags}"),)
    start_client, start_server = recorder.start_grpc_client, recorder.start_grpc_server

    def client_hop() -> None:
        started = start_client(client_route, None)
        assert started is not None
        started[0].finish(OK)

    def server_hop() -> None:
        start_server(server_route, incoming).finish(OK)

    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=10)
        rpc = channel.unary_unary(METHOD)

        def with_metadata_sent() -> None:
            started = start_client(client_route, None)
            assert started is not None
            rpc(b"x", metadata=started[1])
            started[0].finish(OK)

        operations: dict[str, Callable[[], object]] = {
            "plain RPC": lambda: rpc(b"x"),
            "client hop": lambda: (rpc(b"x"), client_hop()),
            "client hop, metadata sent": with_metadata_sent,
            "server hop": lambda: (rpc(b"x"), server_hop()),
        }
        for operation in operations.values():
            thread_us(operation, 500)  # warm-up
        rounds: dict[str, list[float]] = {name: [] for name in operations}
        for _ in range(ROUNDS):
            for name, operation in operations.items():
                rounds[name].append(thread_us(operation, OPS_PER_ROUND))
            tel.force_flush()
        channel.close()
    finally:
        child.kill()
        child.wait()
    tight: dict[str, float | None] = {"client hop, metadata sent": None}
    for name, hop in (("client hop", client_hop), ("server hop", server_hop)):
        tel.force_flush()
        tight[name] = min(thread_us(hop, TIGHT_OPS) for _ in range(5))
    tel.shutdown()
    plain = rounds.pop("plain RPC")
    print(f"sampler {sampler}; plain RPC {statistics.median(plain):.1f} µs of the calling thread's CPU")
    print(f"{'operation':<28} {'in situ µs':>11} {'IQR of pairs':>14} {'tight loop µs':>14}")
    for name, values in rounds.items():
        added = sorted(value - base for value, base in zip(values, plain, strict=True))
        quartiles = statistics.quantiles(added, n=4)
        loop = tight[name]
        print(
            f"{name:<28} {statistics.median(added):>+11.1f} {quartiles[0]:>6.1f}..{quartiles[2]:<6.1f}"
            f" {'-' if loop is None else f'{loop:.2f}':>14}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "parentbased_always_off")
