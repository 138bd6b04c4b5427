"""``python -m benchmarks.memory``: bytes per queued span, per metric series, per in-flight RPC; RSS over 1M RPCs.

    python -m benchmarks.memory                  # everything (~13 min on 2 cores): table to stdout, files written
    python -m benchmarks.memory --rpcs 100000    # a shorter RSS run
    python -m benchmarks.memory --parts heap     # the tracemalloc figures only (~2 min)
    python -m benchmarks.memory --ratio 1.0      # the RSS run with every RPC sampled

Writes ``benchmarks/results/memory.md`` (the table) and ``memory.json`` (every figure and sample) unless
``--no-save``; ``--output PATH`` writes the table elsewhere (the JSON beside it).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from benchmarks.memory import heap, rss
from benchmarks.memory.report import render, write_json
from benchmarks.overhead.machine import describe_machine

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "memory.md"

T = TypeVar("T")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def _median_of(runs: int, measure: Callable[[], T], key: Callable[[T], float]) -> T:
    """The run whose ``key`` is the median of ``runs`` runs (odd ``runs``: a real run, not an average)."""
    results = sorted((measure() for _ in range(runs)), key=key)
    return results[len(results) // 2]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="heap,rss", help="heap, rss or heap,rss (default)")
    parser.add_argument("--rpcs", type=int, default=1_000_000, help="RPCs of the RSS run after warm-up")
    parser.add_argument(
        "--sample-every", type=int, default=None, help="RPCs between RSS readings (default 50,000, at most rpcs/10)"
    )
    parser.add_argument("--warmup", type=int, default=None, help="warm-up RPCs (default: sample-every)")
    parser.add_argument("--threads", type=int, default=4, help="client threads of the RSS run")
    parser.add_argument("--ratio", type=float, default=0.1, help="sampling ratio of the RSS run")
    parser.add_argument("--spans-rpcs", type=int, default=5000, help="N of the queued-span figure")
    parser.add_argument("--methods", type=int, default=1000, help="N of the metric-series figure")
    parser.add_argument("--held", type=int, default=200, help="K of the in-flight figure")
    parser.add_argument("--reps", type=int, default=3, help="runs of each tracemalloc figure (the median is kept)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the table goes")
    parser.add_argument("--no-save", action="store_true", help="write no file")
    args = parser.parse_args(argv)
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not args.parts <= {"heap", "rss"}:
        parser.error(f"unknown part in --parts: {sorted(args.parts - {'heap', 'rss'})}")
    if args.sample_every is None:
        args.sample_every = max(1, min(50_000, args.rpcs // 10))
    if args.warmup is None:
        args.warmup = args.sample_every
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks.memory", *(sys.argv[1:] if argv is None else argv)])
    machine = describe_machine(REPO_ROOT)
    commit = _commit()
    # The RSS run first, while this process (its client) has done nothing else.
    run = None
    if "rss" in args.parts:
        _say(f"rss: {args.warmup:,} warm-up RPCs, then {args.rpcs:,}, RSS every {args.sample_every:,}")
        run = rss.run(
            args.rpcs,
            sample_every=args.sample_every,
            warmup=args.warmup,
            threads=args.threads,
            ratio=args.ratio,
            progress=_say,
        )
    spans = series = held = kept = None
    if "heap" in args.parts:
        _say(f"queued spans: {args.reps} x 2 x {args.spans_rpcs:,} RPCs")
        spans = _median_of(args.reps, lambda: heap.queued_spans(args.spans_rpcs), lambda r: r.bytes_per_span)
        _say(f"retained per unsampled RPC: {args.reps} x 2 x {args.spans_rpcs:,} RPCs")
        kept = _median_of(args.reps, lambda: heap.retained(args.spans_rpcs), lambda r: r.bytes_per_rpc)
        _say(f"metric series: {args.reps} x 3 x 2 x {args.methods:,} new methods")
        series = _median_of(args.reps, lambda: heap.metric_series(args.methods), lambda r: r.hoptel_both)
        _say(f"in flight: {args.reps} x 3 x {args.held} held RPCs")
        held = _median_of(args.reps, lambda: heap.in_flight(args.held), lambda r: r.hoptel_both)
    text = render(command, machine, commit, spans, kept, series, held, run)
    sys.stdout.write(text)
    if not args.no_save:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        parts = {"queued_spans": spans, "retained": kept, "metric_series": series, "in_flight": held, "rss": run}
        write_json(args.output.with_suffix(".json"), command, machine, commit, parts)
        _say(f"wrote {args.output} and {args.output.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
