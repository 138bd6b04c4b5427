"""Run the plan: per workload, start a server and a client per variant, warm up, then alternate measured trials.

One trial of one variant::

    server: snap (flush its spans, read its CPU clock)        -> s0
    client: run N operations (flush before and after)         -> client CPU, wall time
    server: snap                                              -> s1; server CPU = s1 - s0
    receiver: how many spans arrived for these N operations

Every repetition starts fresh processes for all variants (warmed up, idle while another variant is measured),
because one process keeps its own speed: two identical uninstrumented server processes measured side by side
differed by up to 3.4 % of the W5 handler's CPU, for the whole life of the processes (address-space layout,
cache placement). With one pair per variant for the whole run that bias would read as instrumentation cost; with
new processes per repetition it becomes noise that the medians absorb. The order of the trials rotates from one
repetition to the next (A B C, B C A, C A B, ...), so that a drift of the machine (another job starting, a CPU
clocking down) falls on every variant alike. Spans go to one ``OTLPReceiver`` in this process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from benchmarks.overhead.grpc_worker import burn
from benchmarks.overhead.processes import Worker, worker_command
from benchmarks.overhead.spec import Sizes, Workload
from hoptel.receiver import OTLPReceiver

__all__ = ["Trial", "calibrate_burn", "child_environment", "run_workload", "variant_order"]

_BURN_TARGET_S = 0.001


@dataclass(frozen=True, slots=True)
class Trial:
    """One measured trial of one variant: CPU seconds of both processes over ``ops`` operations."""

    workload: str
    variant: str
    rep: int
    ops: int
    client_cpu: float
    server_cpu: float
    client_wall: float
    spans: int
    server_pid: int = 0
    client_pid: int = 0

    @property
    def client_us(self) -> float:
        """Client CPU µs per operation."""
        return self.client_cpu / self.ops * 1e6

    @property
    def server_us(self) -> float:
        """Server CPU µs per operation."""
        return self.server_cpu / self.ops * 1e6


def calibrate_burn(target_s: float = _BURN_TARGET_S, rounds: int = 5) -> int:
    """Loop iterations of ``burn`` that take about ``target_s`` of CPU here (the fastest of ``rounds``)."""
    probe = 20_000
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        burn(probe)
        best = min(best, time.process_time() - start)
    return max(1, round(probe * target_s / max(best, 1e-9)))


def child_environment(base: Mapping[str, str], receiver: OTLPReceiver, work: Workload) -> dict[str, str]:
    """The workers' environment: ``base`` without any OTEL_*/HOPTEL_* setting, plus the benchmark's own."""
    env = {k: v for k, v in base.items() if not k.startswith(("OTEL_", "HOPTEL_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "HOPTEL_METRICS_ADDR": "127.0.0.1:0",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    if work.sampler is not None:
        env["OTEL_TRACES_SAMPLER"], env["OTEL_TRACES_SAMPLER_ARG"] = work.sampler
        if not env["OTEL_TRACES_SAMPLER_ARG"]:
            del env["OTEL_TRACES_SAMPLER_ARG"]
    return env


def variant_order(variants: Sequence[str], rep: int) -> list[str]:
    """The order of the trials of repetition ``rep``: rotated by one each time (A B C, B C A, C A B, A B C, ...).

    Over any ``len(variants)`` consecutive repetitions every variant is measured once in every position, so
    neither a drift of the machine within a repetition nor what the previous trial leaves behind (processes just
    measured still winding down) favours one variant.
    """
    shift = rep % len(variants)
    return [*variants[shift:], *variants[:shift]]


@dataclass
class _Pair:
    server: Worker
    client: Worker


def _start_pairs(
    stack: ExitStack, work: Workload, variants: Sequence[str], env: Mapping[str, str], burn_iterations: int
) -> dict[str, _Pair]:
    servers = {
        v: stack.enter_context(
            Worker(f"{work.key}/{v}/server", worker_command("server", work.key, v, "--burn", str(burn_iterations)), env)
        )
        for v in variants
    }
    ports = {v: int(server.receive()["port"]) for v, server in servers.items()}
    clients = {
        v: stack.enter_context(
            Worker(
                f"{work.key}/{v}/client",
                worker_command("client", work.key, v, "--target", f"127.0.0.1:{ports[v]}"),
                env,
            )
        )
        for v in variants
    }
    for client in clients.values():
        client.receive()
    return {v: _Pair(servers[v], clients[v]) for v in variants}


def _trial(work: Workload, variant: str, rep: int, pair: _Pair, ops: int, receiver: OTLPReceiver) -> Trial:
    s0 = float(pair.server.request("snap")["cpu"])
    receiver.clear()
    reply = pair.client.request("run", ops=ops)
    s1 = float(pair.server.request("snap")["cpu"])
    return Trial(
        workload=work.key,
        variant=variant,
        rep=rep,
        ops=int(reply["ops"]),
        client_cpu=float(reply["cpu"]),
        server_cpu=s1 - s0,
        client_wall=float(reply["wall"]),
        spans=len(receiver.spans()),
        server_pid=pair.server.pid,
        client_pid=pair.client.pid,
    )


def run_workload(
    work: Workload,
    variants: Sequence[str],
    sizes: Sizes,
    reps: int,
    receiver: OTLPReceiver,
    *,
    burn_iterations: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Iterator[Trial]:
    """Measure ``work`` for every variant, ``reps`` times each, alternating; yields each trial as it ends."""
    env = child_environment(os.environ, receiver, work)
    for rep in range(reps):
        with ExitStack() as stack:  # new processes for every repetition: see the module docstring
            pairs = _start_pairs(stack, work, variants, env, burn_iterations)
            for variant in variants:  # warm up, then flush both sides so no warm-up span lands in a trial
                pairs[variant].client.request("run", ops=sizes.warmup)
                pairs[variant].server.request("snap")
            for variant in variant_order(variants, rep):
                trial = _trial(work, variant, rep, pairs[variant], sizes.ops, receiver)
                if progress is not None:
                    progress(
                        f"{work.key} rep {rep + 1}/{reps} {variant:<8} client {trial.client_us:8.1f} µs/op"
                        f"  server {trial.server_us:8.1f} µs/op  spans/op {trial.spans / trial.ops:.2f}"
                    )
                yield trial
        receiver.clear()
