"""The instruction table: every workload and variant counted under callgrind, client and server in one process.

For each workload and variant one valgrind process runs ``benchmarks.instructions.inprocess``; at the end of each
of its three phases (warm-up, N operations, 2N operations) this launcher has callgrind dump every thread's count
(``callgrind_control --dump``) while the process waits with nothing in flight, so the phase boundaries are exact
for the request path. Per operation: ``(count(2N phase) - count(N phase)) / N``, which cancels everything a phase
pays once (the flush, the protocol). Threads that called ``label_thread()`` in a phase, and the main thread, are
the request path; the others (the span exporter, gRPC's C-core pollers and timers, the metrics endpoint, the flush
helper) are background, reported apart because their counts follow wall time under valgrind. Spans go over
OTLP/gRPC to an ``OTLPReceiver`` in this (launcher) process, which valgrind does not see.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.instructions.callgrind import HASH_SEED, ThreadCount, callgrind_argv, read_counts
from benchmarks.instructions.report import render_markdown
from benchmarks.overhead.launcher import child_environment
from benchmarks.overhead.machine import describe_machine
from benchmarks.overhead.processes import REPO_ROOT, Worker
from benchmarks.overhead.spec import workload
from hoptel.receiver import OTLPReceiver

__all__ = ["DEFAULT_OPS", "DEFAULT_REPS", "Counted", "count_run", "main_thread_per_op", "per_op", "run_table"]

DEFAULT_OPS = 200
"""N: each run counts a phase of N operations and one of 2N. The difference is exact, so N need not be large:
start-up (imports under valgrind) takes most of a run's 15-40 s."""
DEFAULT_REPS = 2
"""Processes per workload and variant: the request path's count moves by about 1 % from one process to the next
(how gRPC's polling interleaves with the other threads), so the table shows the mean and the spread."""
WARMUP = 30
_DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "instructions.md"
_PHASE_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Counted:
    """One workload and variant, counted: instructions per operation and what else the run saw.

    Attributes:
        workload: ``W1`` .. ``W6``.
        variant: ``bare``, ``noop``, ``hoptel``, ``official``.
        rep: the repetition (every repetition is a new process).
        n: operations of the shorter phase.
        request: request-path instructions per operation.
        background: background threads' instructions per operation (wall-time dependent under valgrind).
        labels: request-path labels per operation (a check: the same for every variant of a workload).
        spans: spans per operation that reached the receiver.
        seconds: wall time of the valgrind run.
        main: the main thread's instructions per operation (part of ``request``): the client's side, except in
            W2, where the main thread's event loop runs the server too.
    """

    workload: str
    variant: str
    rep: int
    n: int
    request: float
    background: float
    labels: float
    spans: float
    seconds: float
    main: float = 0.0


def per_op(counts: Sequence[ThreadCount], first: int, second: int, n: int) -> tuple[float, float, float]:
    """Request-path and background instructions, and labels, per operation: dump ``second`` minus ``first`` over n.

    A thread counts as request path in a dump when it is the main thread (1) or called ``label_thread()`` then.
    """

    def sums(part: int) -> tuple[int, int, int]:
        request = background = labels = 0
        for count in counts:
            if count.part != part:
                continue
            if count.thread == 1 or count.labels:
                request += count.instructions
                labels += count.labels
            else:
                background += count.instructions
        return request, background, labels

    a, b = sums(first), sums(second)
    return (b[0] - a[0]) / n, (b[1] - a[1]) / n, (b[2] - a[2]) / n


def main_thread_per_op(counts: Sequence[ThreadCount], first: int, second: int, n: int) -> float:
    """The main thread's instructions per operation: its dump ``second`` minus its dump ``first``, over n."""
    main = {count.part: count.instructions for count in counts if count.thread == 1}
    return (main.get(second, 0) - main.get(first, 0)) / n


def _dump(pid: int) -> None:
    control = shutil.which("callgrind_control")
    if control is None:
        raise SystemExit("callgrind_control (part of valgrind) is not on PATH")
    result = subprocess.run([control, "--dump", str(pid)], capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"callgrind_control --dump {pid} failed: {result.stdout}{result.stderr}")


def count_run(key: str, variant: str, n: int, receiver: OTLPReceiver, warmup: int = WARMUP, rep: int = 0) -> Counted:
    """Count one workload and variant in one valgrind process (see the module docstring)."""
    work = workload(key)
    env = child_environment(os.environ, receiver, work)
    env["PYTHONHASHSEED"] = HASH_SEED
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hoptel-instructions-") as tmp:
        out = Path(tmp)
        program = ["-m", "benchmarks.instructions.inprocess", key, variant, str(n), str(warmup)]
        spans: list[int] = []
        worker = Worker(f"{key}/{variant}", callgrind_argv(program, out), env)
        try:
            for _ in range(3):
                worker.receive(timeout=_PHASE_TIMEOUT_S)
                _dump(worker.pid)
                spans.append(len(receiver.spans()))
                receiver.clear()
                worker.send("go")
        finally:
            worker.close(timeout=300.0)
        counts = read_counts(out, worker.pid)
    parts = {count.part for count in counts}
    if not {1, 2, 3} <= parts:
        raise RuntimeError(f"{key}/{variant}: expected dumps 1-3, found {sorted(parts)}")
    request, background, labels = per_op(counts, 2, 3, n)
    return Counted(
        workload=key,
        variant=variant,
        rep=rep,
        n=n,
        request=request,
        background=background,
        labels=labels,
        spans=(spans[2] - spans[1]) / n,
        seconds=time.monotonic() - started,
        main=main_thread_per_op(counts, 2, 3, n),
    )


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_table(args: argparse.Namespace, progress: Callable[[str], None] = _progress) -> int:
    """Count every workload and variant of ``args``, print the table, write it (unless ``--no-save``)."""
    keys = [key.strip().upper() for key in args.workloads.split(",") if key.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "bare" not in variants:
        raise SystemExit("bare is the baseline every figure is measured against: keep it in --variants")
    n = args.ops or DEFAULT_OPS
    machine = describe_machine(REPO_ROOT)
    started = time.monotonic()
    runs: list[Counted] = []
    with OTLPReceiver() as receiver:
        for key in keys:
            for rep in range(args.reps):
                for variant in variants[rep % len(variants) :] + variants[: rep % len(variants)]:
                    run = count_run(key, variant, n, receiver, rep=rep)
                    progress(
                        f"{key} rep {rep + 1} {variant:<8} request {run.request:>11,.0f} instr/op"
                        f"  background {run.background:>10,.0f}"
                        f"  labels/op {run.labels:.2f}  spans/op {run.spans:.2f}  ({run.seconds:.0f} s)"
                    )
                    runs.append(run)
    command = shlex.join(["python", "-m", "benchmarks.instructions", *sys.argv[1:]])
    minutes = (time.monotonic() - started) / 60
    markdown = render_markdown(runs, machine, command=command, n=n, reps=args.reps, minutes=minutes)
    print(markdown, end="")
    if not args.no_save:
        output: Path = args.output or _DEFAULT_OUTPUT
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown, encoding="utf-8")
        output.with_suffix(".json").write_text(
            json.dumps(
                {
                    "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                    "machine": asdict(machine),
                    "runs": [asdict(run) for run in runs],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        progress(f"wrote {output} and {output.with_suffix('.json')}")
    return 0
