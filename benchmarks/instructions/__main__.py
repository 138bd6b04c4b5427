"""``python -m benchmarks.instructions``: instructions per operation under callgrind, and the hop gate.

- no option: the instruction table (W1, W2, W4, W5, W6 for bare, noop, hoptel and official; ~12 min on 2 cores),
  printed and written to ``benchmarks/results/instructions.md``;
- ``--gate``: count hoptel's hop path (about 25 s) and compare it with ``benchmarks/instruction_baseline.json``;
  exit status 1 when a hop grew more than 5 %;
- ``--gate --update-baseline``: record this interpreter's baseline instead (commit it, saying why);
- ``--parts``: the steps of a client and a server hop counted one by one (``hop_parts``), beside the whole hops,
  and the HTTP hops (``http_parts``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.instructions.callgrind import interpreter_key, valgrind_path
from benchmarks.instructions.gate import BASELINE_PATH, compare, load_baseline, measure_hops, write_baseline

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description="Instructions per operation counted with callgrind: the workload table, or the hop gate.",
    )
    parser.add_argument("--gate", action="store_true", help="count the hop path and compare it with the baseline")
    parser.add_argument("--update-baseline", action="store_true", help="with --gate: record the baseline instead")
    parser.add_argument("--parts", action="store_true", help="count the steps of a hop one by one")
    parser.add_argument("--workloads", default="W1,W2,W4,W5,W6", help="table: comma-separated (default: %(default)s)")
    parser.add_argument("--variants", default="bare,noop,hoptel,official", help="table: comma-separated")
    parser.add_argument("--ops", type=int, default=0, help="table: N (the runs count N and 2N operations)")
    parser.add_argument("--reps", type=int, default=2, help="table: processes per workload and variant")
    parser.add_argument("--output", type=Path, help="table: write the markdown here (default: results/instructions.md)")
    parser.add_argument("--no-save", action="store_true", help="table: print only")
    args = parser.parse_args(argv)
    if args.update_baseline and not args.gate:
        parser.error("--update-baseline goes with --gate")
    return args


def _gate(update: bool) -> int:
    measured = measure_hops()
    if update:
        write_baseline(measured)
        for name, value in measured.items():
            print(f"{name:<30} {value:>10.1f} instructions/hop")
        print(f"recorded the baseline of {interpreter_key()} in {BASELINE_PATH}; commit it and say why")
        return 0
    result = compare(measured, load_baseline(), interpreter_key())
    print("\n".join(result.report))
    if not result.passed:
        print("\n".join(["", "instruction gate FAILED:", *result.failures]), file=sys.stderr)
        return 1
    print(f"instruction gate passed ({interpreter_key()}, tolerance +5 %)")
    return 0


def _parts() -> int:
    hops = measure_hops()
    parts = measure_hops(program="benchmarks.instructions.hop_parts")
    http = measure_hops(program="benchmarks.instructions.http_parts")
    for name in list(http):
        kind, _, _ = name.rpartition(" hoptel ")
        if kind and f"{kind} bare" in http:
            http[f"{name}, added over bare"] = http[name] - http[f"{kind} bare"]
    for title, figures in (
        ("whole hops (the gate's scenarios)", hops),
        ("steps of a hop, each alone", parts),
        ("HTTP hops (http_parts: httpx transport, ASGI middleware)", http),
    ):
        print(f"{title}:")
        for name, value in figures.items():
            print(f"  {name:<44} {value:>10,.0f} instructions")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the table or the gate; returns the exit status."""
    args = parse_args(argv)
    if valgrind_path() is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if args.gate:
        return _gate(args.update_baseline)
    if args.parts:
        return _parts()
    from benchmarks.instructions.table import run_table

    return run_table(args)


if __name__ == "__main__":
    sys.exit(main())
