"""One worker process: a server or a client of one workload, instrumented as one variant.

The launcher starts these; by hand (for a profiler, say) it looks like::

    python -m benchmarks.overhead.worker server W1 hoptel
    python -m benchmarks.overhead.worker client W1 hoptel --target 127.0.0.1:PORT

then speaks the line protocol of ``protocol.py`` on stdin/stdout. The instrumentation's settings come from the
environment (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_TRACES_SAMPLER``, ...), which the launcher prepares.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from benchmarks.overhead.protocol import take_stdout
from benchmarks.overhead.spec import ALL_VARIANTS, WORKLOADS, workload
from benchmarks.overhead.stacks import build_stack

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the worker's command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead.worker")
    parser.add_argument("role", choices=("server", "client"))
    parser.add_argument("workload", choices=[w.key for w in WORKLOADS])
    parser.add_argument("variant", choices=ALL_VARIANTS)
    parser.add_argument("--target", default="", help="host:port of the server (client only)")
    parser.add_argument("--burn", type=int, default=0, help="loop iterations the handler burns per call (W5)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Build the variant's stack, serve or call, and answer the launcher until it says ``quit``."""
    args = parse_args(argv)
    writer = take_stdout()
    work = workload(args.workload)
    stack = build_stack(args.variant, f"bench-{args.role}")
    if work.kind == "http":
        from benchmarks.overhead import http_worker

        if args.role == "server":
            http_worker.run_http_server(writer, stack)
        else:
            http_worker.run_http_client(writer, stack, args.target)
        return
    from benchmarks.overhead import grpc_worker

    aio = work.kind == "grpc_aio"
    if args.role == "server":
        serve = grpc_worker.run_aio_server if aio else grpc_worker.run_sync_server
        serve(writer, stack, work, args.burn if work.burn else 0)
    else:
        call = grpc_worker.run_aio_client if aio else grpc_worker.run_sync_client
        call(writer, stack, work, args.target)


if __name__ == "__main__":
    main()
