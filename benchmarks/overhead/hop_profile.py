"""Where an instrumented hop's CPU goes: py-spy on a benchmark client and server, stacks attributed per package.

    python -m benchmarks.overhead.hop_profile W1 --variant hoptel --ops 20000

Starts one server and one client of the workload (exactly as the benchmark does, exporting to an in-process
receiver), attaches ``py-spy record`` (sampling, non-blocking) to both, runs ``--ops`` operations and turns the
samples into µs per operation:

- a sample is *instrumentation* when the frame nearest its leaf that is not the standard library belongs to
  hoptel, opentelemetry, prometheus_client, py_grpc_prometheus or wrapt, or when the thread runs nothing but
  instrumentation (the batch exporter's thread, for instance); everything else (grpc, httpx, the benchmark's
  own loop) is the hop's *work*;
- instrumentation samples are then grouped by that leaf-side frame (*self*) and by the hoptel function nearest
  the leaf (*via*), which is where an optimisation would start.

py-spy sees Python threads only: CPU that gRPC's C core spends on its own threads is not in these numbers (it is
in the benchmark's getrusage totals). Needs ``pip install py-spy``.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.overhead.launcher import calibrate_burn, child_environment
from benchmarks.overhead.processes import Worker, worker_command
from benchmarks.overhead.spec import VARIANTS, WORKLOADS, workload
from hoptel.receiver import OTLPReceiver

__all__ = ["Profile", "classify", "main", "parse_raw"]

_INSTRUMENTATION = (
    "hoptel/",
    "/interceptors/",
    "/propagate/",
    "opentelemetry/",
    "prometheus_client/",
    "py_grpc_prometheus/",
    "wrapt/",
)
_STDLIB_MARKERS = ("<frozen ", "/lib/python3")
_SITE = ("site-packages/", "dist-packages/")


def _location(frame: str) -> str:
    """``func (path:line)`` -> ``path``."""
    start = frame.rfind(" (")
    return frame[start + 2 : -1] if start >= 0 else ""


def classify(frame: str) -> str:
    """``instr``, ``stdlib`` or ``work`` for one py-spy frame (``function (path:line)``)."""
    path = _location(frame)
    if any(marker in path for marker in _INSTRUMENTATION):
        return "instr"
    if any(marker in path for marker in _STDLIB_MARKERS) and not any(site in path for site in _SITE):
        return "stdlib"
    return "work"


def _short(frame: str) -> str:
    """``func (…/site-packages/pkg/mod.py:12)`` -> ``pkg/mod.py:func``."""
    name, _, rest = frame.partition(" (")
    path = rest.rstrip(")").rsplit(":", 1)[0]
    for cut in ("site-packages/", "/work/main/", "/lib/python3.11/"):
        if cut in path:
            path = path.split(cut, 1)[1]
    return f"{path}:{name}"


def _is_hoptel(frame: str) -> bool:
    path = _location(frame)
    return any(marker in path for marker in ("hoptel/", "/interceptors/", "/propagate/"))


@dataclass
class Profile:
    """Samples of one process, attributed."""

    total: int = 0
    instrumentation: int = 0
    by_self: collections.Counter[str] = field(default_factory=collections.Counter)
    by_hoptel: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, frames: Sequence[str], count: int) -> None:
        """Attribute one stack (root first) seen ``count`` times."""
        self.total += count
        kinds = [classify(f) for f in frames]
        owner = next((i for i in range(len(frames) - 1, -1, -1) if kinds[i] != "stdlib"), None)
        first_instr = next((i for i, kind in enumerate(kinds) if kind == "instr"), None)
        background = first_instr is not None and "work" not in kinds[:first_instr]
        if owner is None or (kinds[owner] != "instr" and not background):
            return
        self.instrumentation += count
        leaf_instr = max(i for i, kind in enumerate(kinds) if kind == "instr")
        self.by_self[_short(frames[leaf_instr])] += count
        hoptel = next((frames[i] for i in range(len(frames) - 1, -1, -1) if _is_hoptel(frames[i])), None)
        self.by_hoptel[_short(hoptel) if hoptel else "(not under a hoptel frame)"] += count


def parse_raw(lines: Iterable[str]) -> Profile:
    """A Profile from py-spy's ``--format raw`` output (``frame;frame;... count`` per line)."""
    profile = Profile()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            profile.add(stack.split(";"), int(count))
    return profile


def _spy(pid: int, out: Path, rate: int) -> subprocess.Popen[bytes]:
    command = ["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--nonblocking"]
    return subprocess.Popen([*command, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _report(role: str, profile: Profile, rate: int, ops: int, top: int) -> list[str]:
    def us(samples: int) -> float:
        return samples / rate / ops * 1e6

    lines = [
        f"## {role}: {us(profile.total):.1f} µs/op sampled in Python threads, "
        f"instrumentation {us(profile.instrumentation):.1f} µs/op",
        "",
        "self (leaf-most instrumentation frame):",
    ]
    lines += [f"  {us(n):7.2f} µs/op  {name}" for name, n in profile.by_self.most_common(top)]
    lines += ["", "via (hoptel frame nearest the leaf):"]
    lines += [f"  {us(n):7.2f} µs/op  {name}" for name, n in profile.by_hoptel.most_common(top)]
    return [*lines, ""]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.overhead.hop_profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("workload", choices=[w.key for w in WORKLOADS])
    parser.add_argument("--variant", choices=VARIANTS, default="hoptel")
    parser.add_argument("--ops", type=int, default=20000, help="operations measured (default: %(default)s)")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second (default: %(default)s)")
    parser.add_argument("--top", type=int, default=12, help="lines per list (default: %(default)s)")
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw output in this directory")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Profile one workload's client and server; print the attribution."""
    args = parse_args(argv)
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    work = workload(args.workload)
    burn = calibrate_burn() if work.burn else 0
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="hop-profile-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with OTLPReceiver() as receiver:
        env = child_environment(os.environ, receiver, work)
        name = f"{work.key}/{args.variant}"
        server_argv = worker_command("server", work.key, args.variant, "--burn", str(burn))
        with Worker(f"{name}/server", server_argv, env) as server:
            target = f"127.0.0.1:{server.receive()['port']}"
            client_argv = worker_command("client", work.key, args.variant, "--target", target)
            with Worker(f"{name}/client", client_argv, env) as client:
                client.receive()
                client.request("run", ops=max(100, args.ops // 10))
                server.request("snap")
                spies = {
                    role: _spy(w.pid, out_dir / f"{role}.txt", args.rate)
                    for role, w in (("client", client), ("server", server))
                }
                reply = client.request("run", ops=args.ops)
                server.request("snap")
                for spy in spies.values():
                    spy.send_signal(signal.SIGINT)
                for spy in spies.values():
                    spy.wait(timeout=60)
    ops = int(reply["ops"])
    print(f"# {name}: {ops} {work.unit}s, py-spy at {args.rate} Hz (raw stacks in {out_dir})\n")
    for role in ("client", "server"):
        with (out_dir / f"{role}.txt").open(encoding="utf-8") as raw:
            print("\n".join(_report(role, parse_raw(raw), args.rate, ops, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
