"""RSS over many RPCs under load: a client (this process) and a server process, both instrumented by hoptel.

Sync unary echo over loopback, several client threads doing blocking calls through
``hoptel.client_interceptor()``, a 4-thread ``grpc.server`` with ``hoptel.server_interceptor()``, both sampling
with ``parentbased_traceidratio`` and exporting over OTLP/gRPC to an ``OTLPReceiver`` in a third process. After a
warm-up the RSS of every process (``VmRSS`` from ``/proc``) is read every ``sample_every`` RPCs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.memory.echo import PAYLOAD, open_channel, rss_kib, setup_env, telemetry, unary

__all__ = ["Child", "RssRun", "Sample", "drift", "run"]

REPO_ROOT = Path(__file__).resolve().parents[2]


class Child:
    """A ``benchmarks.memory.child`` process: its first line is ``ready <address>``; then one answer per command."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOPTEL_"))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.memory.child", *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # hoptel's JSON log lines
            text=True,
        )
        first = self._readline()
        if not first.startswith("ready "):
            raise RuntimeError(f"child {args[0]} did not start: {first!r}")
        self.address = first.split(" ", 1)[1]

    def _readline(self) -> str:
        out: IO[str] | None = self.process.stdout
        assert out is not None
        line = out.readline()
        if not line:
            raise RuntimeError(f"child {self.process.args!r} exited with {self.process.wait()}")
        return line.strip()

    def ask(self, command: str) -> str:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(command + "\n")
        stdin.flush()
        return self._readline()

    def close(self) -> None:
        if self.process.poll() is None:
            with suppress(BrokenPipeError, RuntimeError):
                self.ask("quit")
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def _child(*args: str) -> Iterator[Child]:
    child = Child(*args)
    try:
        yield child
    finally:
        child.close()


@dataclass(frozen=True)
class Sample:
    """RSS of each process after ``rpcs`` RPCs (warm-up excluded), in KiB."""

    rpcs: int
    seconds: float
    client_kib: int
    server_kib: int
    receiver_kib: int


@dataclass(frozen=True)
class Drift:
    """How one process' RSS moved over the samples, in MiB: last minus first, and the largest move from the first."""

    first_mib: float
    last_mib: float
    last_minus_first_mib: float
    max_abs_from_first_mib: float
    min_mib: float
    max_mib: float


def drift(kib: Sequence[int]) -> Drift:
    """The drift of a series of RSS readings (KiB) against its first one."""
    first = kib[0]
    return Drift(
        first_mib=first / 1024,
        last_mib=kib[-1] / 1024,
        last_minus_first_mib=(kib[-1] - first) / 1024,
        max_abs_from_first_mib=max(abs(k - first) for k in kib) / 1024,
        min_mib=min(kib) / 1024,
        max_mib=max(kib) / 1024,
    )


@dataclass(frozen=True)
class RssRun:
    """The whole run: its settings, every sample, and each process' drift."""

    rpcs: int
    warmup: int
    sample_every: int
    client_threads: int
    ratio: float
    seconds: float
    spans_received: int
    samples: list[Sample] = field(default_factory=list)
    client: Drift | None = None
    server: Drift | None = None

    @property
    def flat_within_mib(self) -> float:
        """The largest move of the client's or the server's RSS from its first sample after warm-up (MiB)."""
        assert self.client is not None
        assert self.server is not None
        return max(self.client.max_abs_from_first_mib, self.server.max_abs_from_first_mib)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flat_within_mib"] = self.flat_within_mib
        return data


def _drive(pool: futures.ThreadPoolExecutor, call: Callable[[bytes], Any], count: int, threads: int) -> None:
    """``count`` blocking calls shared by ``threads`` threads."""

    def loop(n: int) -> None:
        for _ in range(n):
            call(PAYLOAD)

    shares = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
    for done in [pool.submit(loop, n) for n in shares if n]:
        done.result()


def run(
    rpcs: int = 1_000_000,
    *,
    sample_every: int = 50_000,
    warmup: int = 50_000,
    threads: int = 4,
    ratio: float = 0.1,
    progress: Callable[[str], None] | None = None,
) -> RssRun:
    """``warmup`` RPCs, then ``rpcs`` more with the RSS of every process read every ``sample_every`` RPCs."""
    say = progress or (lambda _: None)
    with ExitStack() as stack:
        receiver = stack.enter_context(_child("receiver"))
        server = stack.enter_context(_child("server", receiver.address, str(ratio)))
        env = setup_env(receiver.address, sampler="parentbased_traceidratio", ratio=ratio)
        tel = stack.enter_context(telemetry(env))
        channel = stack.enter_context(open_channel(server.address, tel))
        pool = stack.enter_context(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="client"))
        call = unary(channel, "Echo")
        _drive(pool, call, warmup, threads)
        samples: list[Sample] = []
        start = time.monotonic()

        def sample(done: int) -> None:
            samples.append(
                Sample(
                    done,
                    round(time.monotonic() - start, 1),
                    rss_kib(),
                    int(server.ask("rss")),
                    int(receiver.ask("rss")),
                )
            )
            s = samples[-1]
            say(
                f"rss: {done:>9,} RPCs {s.seconds:7.1f} s  client {s.client_kib / 1024:6.1f} MiB"
                f"  server {s.server_kib / 1024:6.1f} MiB  receiver {s.receiver_kib / 1024:6.1f} MiB"
            )

        sample(0)
        done = 0
        while done < rpcs:
            step = min(sample_every, rpcs - done)
            _drive(pool, call, step, threads)
            done += step
            sample(done)
        seconds = time.monotonic() - start
        tel.force_flush(30.0)
        server.ask("flush")
        spans = int(receiver.ask("spans"))
    return RssRun(
        rpcs=rpcs,
        warmup=warmup,
        sample_every=sample_every,
        client_threads=threads,
        ratio=ratio,
        seconds=round(seconds, 1),
        spans_received=spans,
        samples=samples,
        client=drift([s.client_kib for s in samples]),
        server=drift([s.server_kib for s in samples]),
    )
