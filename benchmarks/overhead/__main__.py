"""``python -m benchmarks.overhead``: measure W1..W6 for bare / hoptel / official and print the markdown table.

A full run (the default) writes ``benchmarks/results/latest.md`` and ``latest.json`` (the JSON is gitignored);
``--quick`` is a smoke run (few operations, one repetition) that writes nothing unless ``--output`` is given.
Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.overhead.launcher import Trial, calibrate_burn, run_workload
from benchmarks.overhead.machine import describe_machine
from benchmarks.overhead.metric_record import metric_record_us
from benchmarks.overhead.processes import REPO_ROOT
from benchmarks.overhead.report import render_markdown, summarize, to_json
from benchmarks.overhead.spec import ALL_VARIANTS, VARIANTS, Sizes, Workload, workload
from hoptel.receiver import OTLPReceiver

__all__ = ["main", "parse_args"]

_FULL_REPS = 12  # a multiple of 3 and 4: every variant takes every position equally often
_DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "latest.md"
_HOPTEL_MODULES = {
    "grpc": ("hoptel.interceptors.grpc.server", "hoptel.interceptors.grpc.client"),
    "grpc_aio": ("hoptel.interceptors.grpc.aio_server", "hoptel.interceptors.grpc.aio_client"),
    "http": ("hoptel.interceptors.http.httpx_transport", "hoptel.interceptors.http.asgi"),
}


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.overhead",
        description="CPU overhead of hoptel and of the official OTel instrumentations, per hop, against bare.",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: few operations, 1 repetition, no files")
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6", help="comma-separated (default: %(default)s)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--reps", type=int, help=f"repetitions per variant (default: {_FULL_REPS}, quick: 1)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every operation count by this")
    parser.add_argument("--output", type=Path, help=f"write the markdown here (full run default: {_DEFAULT_OUTPUT})")
    parser.add_argument("--no-save", action="store_true", help="write no files, only print the table")
    args = parser.parse_args(argv)
    args.workloads = [workload(key) for key in _names(args.workloads)]
    args.variants = _names(args.variants)
    unknown = sorted(set(args.variants) - set(ALL_VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(ALL_VARIANTS)}")
    if "bare" not in args.variants:
        parser.error("bare is the baseline every overhead is measured against: keep it in --variants")
    if args.reps is None:
        args.reps = 1 if args.quick else _FULL_REPS
    if args.reps < 1 or args.scale <= 0:
        parser.error("--reps must be >= 1 and --scale > 0")
    return args


def _check_hoptel(workloads: Sequence[Workload]) -> None:
    needed = dict.fromkeys(m for w in workloads for m in _HOPTEL_MODULES[w.kind])
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(
            f"hoptel's integrations for these workloads are not there yet (missing {', '.join(missing)}); "
            "run with --variants bare,official or choose other --workloads"
        )


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = parse_args(argv)
    if "hoptel" in args.variants:
        _check_hoptel(args.workloads)
    machine = describe_machine(REPO_ROOT)
    burn_iterations = calibrate_burn() if any(w.burn for w in args.workloads) else 0
    trials: list[Trial] = []
    with OTLPReceiver() as receiver:
        for work in args.workloads:
            base = work.quick if args.quick else work.full
            sizes = Sizes(ops=max(1, round(base.ops * args.scale)), warmup=max(1, round(base.warmup * args.scale)))
            _progress(f"{work.key} {work.title}: {sizes.ops} ops, {args.reps} reps, {len(args.variants)} variants")
            trials.extend(
                run_workload(
                    work,
                    args.variants,
                    sizes,
                    args.reps,
                    receiver,
                    burn_iterations=burn_iterations,
                    progress=_progress,
                )
            )
    mode = f"{'quick' if args.quick else 'full'} run, {args.reps} repetition(s)"
    if burn_iterations:
        mode += f", W5 handler loop {burn_iterations} iterations (~1 ms here)"
    command = shlex.join(["python", "-m", "benchmarks.overhead", *(sys.argv[1:] if argv is None else argv)])
    rows = summarize(trials)
    record_us = metric_record_us() if "hoptel" in args.variants else None
    markdown = render_markdown(rows, machine, mode=mode, command=command, metric_record_us=record_us)
    print(markdown, end="")
    output = args.output or (None if args.quick else _DEFAULT_OUTPUT)
    if output is not None and not args.no_save:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown, encoding="utf-8")
        output.with_suffix(".json").write_text(
            json.dumps(to_json(trials, rows, machine, mode=mode, metric_record_us=record_us), indent=2) + "\n",
            encoding="utf-8",
        )
        _progress(f"wrote {output} and {output.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
