"""Where an instrumented hop's CPU goes: py-spy on a benchmark client and server, stacks attributed per area.

    python -m benchmarks.overhead.hop_profile W1 --variant hoptel --ops 10000

Starts one server and one client of the workload exactly as the benchmark does (exporting to an in-process
receiver), measures ``--ops`` operations *without* a profiler (getrusage CPU per operation, the reference), then
again with ``py-spy record --gil`` attached to both processes. Each GIL-holding sample is attributed:

- it is *instrumentation* when the frame nearest its leaf that is not the standard library belongs to hoptel,
  opentelemetry, prometheus_client, py_grpc_prometheus or wrapt, or when its thread runs nothing but
  instrumentation (the batch exporter's thread); everything else (grpc, httpx, the benchmark loop) is *work*;
- instrumentation samples are grouped by *area* (span creation, export encoding, metrics, propagation, ...),
  by *self* frame (the leaf-most instrumentation frame) and by *via* (the hoptel frame nearest the leaf).

Samples become µs per operation as samples / rate / operations. That is an estimate: py-spy pauses the process
to sample it, sees only the thread holding the GIL (gRPC's C-core threads and the kernel are in getrusage, not in
the samples), and attributes C calls made with the GIL held to the Python frame that made them. On a quiet
machine the instrumentation share lands close to the benchmark's "added" CPU; use it to rank costs and the
benchmark for totals. Needs ``pip install py-spy``.
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
from benchmarks.overhead.spec import ALL_VARIANTS, WORKLOADS, workload
from hoptel.receiver import OTLPReceiver

__all__ = ["Profile", "area", "classify", "main", "parse_raw"]

_HOPTEL = ("/hoptel/", "/interceptors/", "/propagate/")
_INSTRUMENTATION = (*_HOPTEL, "/opentelemetry/", "/prometheus_client/", "/py_grpc_prometheus/", "/wrapt/")
_STDLIB_MARKERS = ("<frozen ", "/lib/python3")
_SITE = ("site-packages/", "dist-packages/")

# Ordered: the first fragment found in the self frame's path names the area.
_AREAS = (
    ("/opentelemetry/exporter/", "OTLP encoding and export (exporter, batch thread)"),
    ("/hoptel/batch.py", "hoptel batch processor (queue, export thread)"),
    ("/opentelemetry/sdk/resources/", "OTLP encoding and export (exporter, batch thread)"),
    ("/opentelemetry/attributes/", "span creation and end (OTel SDK, attributes)"),
    ("/opentelemetry/sdk/", "span creation and end (OTel SDK, attributes)"),
    ("/opentelemetry/trace/", "span creation and end (OTel SDK, attributes)"),
    ("/opentelemetry/context/", "context attach/detach (OTel API)"),
    ("/hoptel/metrics.py", "metrics (hoptel counters and histograms)"),
    ("/prometheus_client/", "metrics (prometheus_client)"),
    ("/propagate/", "propagation (inject/extract)"),
    ("/interceptors/", "hoptel interceptors and recorder (own code)"),
)


def _location(frame: str) -> str:
    """``func (path:line)`` -> ``path``."""
    start = frame.rfind(" (")
    return frame[start + 2 : frame.rfind(":")] if start >= 0 else ""


def classify(frame: str) -> str:
    """``instr``, ``stdlib`` or ``work`` for one py-spy frame (``function (/full/path.py:line)``)."""
    path = _location(frame)
    if any(marker in path for marker in _INSTRUMENTATION):
        return "instr"
    if any(marker in path for marker in _STDLIB_MARKERS) and not any(site in path for site in _SITE):
        return "stdlib"
    return "work"


def area(frame: str) -> str:
    """The area of an instrumentation frame (see ``_AREAS``), else its path."""
    path = _location(frame)
    return next((name for fragment, name in _AREAS if fragment in path), path)


def _short(frame: str) -> str:
    """``func (/…/site-packages/pkg/mod.py:12)`` -> ``pkg/mod.py:func``."""
    name, _, _ = frame.partition(" (")
    path = _location(frame)
    for cut in ("-packages/", "/work/main/", "/lib/python3.11/"):
        if cut in path:
            path = path.split(cut, 1)[1]
    return f"{path}:{name}"


def _is_hoptel(frame: str) -> bool:
    path = _location(frame)
    return any(marker in path for marker in _HOPTEL)


@dataclass
class Profile:
    """GIL-holding samples of one process, attributed."""

    total: int = 0
    instrumentation: int = 0
    by_area: collections.Counter[str] = field(default_factory=collections.Counter)
    by_self: collections.Counter[str] = field(default_factory=collections.Counter)
    by_via: collections.Counter[str] = field(default_factory=collections.Counter)

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
        leaf = max(i for i, kind in enumerate(kinds) if kind == "instr")
        self.by_area[area(frames[leaf])] += count
        self.by_self[_short(frames[leaf])] += count
        via = next((frames[i] for i in range(leaf, -1, -1) if _is_hoptel(frames[i])), None)
        self.by_via[_short(via) if via else "(no hoptel frame)"] += count


def parse_raw(lines: Iterable[str]) -> Profile:
    """A Profile from py-spy's ``--format raw`` output (``frame;frame;... count`` per line)."""
    profile = Profile()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            profile.add(stack.split(";"), int(count))
    return profile


def _spy(pid: int, out: Path, rate: int) -> subprocess.Popen[bytes]:
    command = ["py-spy", "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--full-filenames"]
    command += ["--gil"]  # only samples of the thread holding the GIL: Python work, not threads waiting in C
    return subprocess.Popen([*command, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(role: str, profile: Profile, rate: int, ops: int, cpu_us: float, top: int) -> list[str]:
    """The attribution of one process as text; ``cpu_us`` is its unprofiled getrusage CPU µs per operation."""

    def us(samples: int) -> float:
        return samples / rate / ops * 1e6

    def line(samples: int, name: str) -> str:
        return f"  {us(samples):7.1f} µs/op  {samples / max(profile.instrumentation, 1):6.1%}  {name}"

    lines = [
        f"## {role}: {cpu_us:.1f} µs/op CPU (getrusage, unprofiled), of which {us(profile.total):.1f} µs/op "
        f"holding the GIL; instrumentation ≈ {us(profile.instrumentation):.1f} µs/op "
        f"({profile.instrumentation / max(profile.total, 1):.1%} of the GIL samples)",
        "",
        "by area (µs/op sampled, share of the instrumentation samples):",
        *(line(n, name) for name, n in profile.by_area.most_common()),
        "",
        "by self frame (leaf-most instrumentation frame):",
        *(line(n, name) for name, n in profile.by_self.most_common(top)),
        "",
        "via (hoptel frame nearest the leaf):",
        *(line(n, name) for name, n in profile.by_via.most_common(top)),
        "",
    ]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.overhead.hop_profile",
        description="Where an instrumented hop's CPU goes (py-spy on a benchmark client and server).",
    )
    parser.add_argument("workload", choices=[w.key for w in WORKLOADS])
    parser.add_argument("--variant", choices=ALL_VARIANTS, default="hoptel")
    parser.add_argument("--ops", type=int, default=10000, help="operations per run (default: %(default)s)")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second (default: %(default)s)")
    parser.add_argument("--top", type=int, default=12, help="lines per list (default: %(default)s)")
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw output in this directory")
    return parser.parse_args(argv)


def _measure(client: Worker, server: Worker, ops: int) -> tuple[int, float, float]:
    """One run: operations done, client and server CPU seconds."""
    s0 = float(server.request("snap")["cpu"])
    reply = client.request("run", ops=ops)
    s1 = float(server.request("snap")["cpu"])
    return int(reply["ops"]), float(reply["cpu"]), s1 - s0


def main(argv: Sequence[str] | None = None) -> int:
    """Profile one workload's client and server; print the attribution."""
    args = parse_args(argv)
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    work = workload(args.workload)
    burn = calibrate_burn() if work.burn else 0
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="hop-profile-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{work.key}/{args.variant}"
    with OTLPReceiver() as receiver:
        env = child_environment(os.environ, receiver, work)
        server_argv = worker_command("server", work.key, args.variant, "--burn", str(burn))
        with Worker(f"{name}/server", server_argv, env) as server:
            target = f"127.0.0.1:{server.receive()['port']}"
            client_argv = worker_command("client", work.key, args.variant, "--target", target)
            with Worker(f"{name}/client", client_argv, env) as client:
                client.receive()
                _measure(client, server, max(100, args.ops // 10))  # warm-up
                ops, client_cpu, server_cpu = _measure(client, server, args.ops)
                spies = [
                    _spy(w.pid, out_dir / f"{role}.txt", args.rate)
                    for role, w in (("client", client), ("server", server))
                ]
                _measure(client, server, args.ops)
                for spy in spies:
                    spy.send_signal(signal.SIGINT)
                for spy in spies:
                    spy.wait(timeout=60)
    print(f"# {name}: {ops} {work.unit}s per run, py-spy --gil at {args.rate} Hz (raw stacks in {out_dir})\n")
    for role, cpu in (("client", client_cpu), ("server", server_cpu)):
        with (out_dir / f"{role}.txt").open(encoding="utf-8") as raw:
            print("\n".join(report(role, parse_raw(raw), args.rate, ops, cpu / ops * 1e6, args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
