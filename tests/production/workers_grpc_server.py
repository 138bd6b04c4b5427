"""A multi-process gRPC server as in grpc's ``examples/python/multiprocessing``: forked workers, one port.

``python workers_grpc_server.py PORT WORKERS parent|child``: the main process forks ``WORKERS`` processes, each
serving ``PORT`` with ``SO_REUSEPORT`` through ``hoptel.server_interceptor()``. With ``parent``,
``hoptel.setup()`` runs in the main process before the fork; with ``child``, in each worker after it. The main
process then waits; the test ends the whole process group. ``/workers.Echo/Unary`` answers
``"<pid> <trace_id>"``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent import futures
from typing import Any

import grpc
from opentelemetry import trace

import hoptel

METHOD = "/workers.Echo/Unary"


def _unary(request: bytes, context: Any) -> bytes:
    trace_id = trace.get_current_span().get_span_context().trace_id
    return f"{os.getpid()} {trace_id:032x}".encode()


class _Handler(grpc.GenericRpcHandler):
    def service(self, handler_call_details: Any) -> Any:
        if handler_call_details.method == METHOD:
            return grpc.unary_unary_rpc_method_handler(_unary)
        return None


def _serve(port: int, setup_here: bool) -> None:
    if setup_here:
        hoptel.setup()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        interceptors=[hoptel.server_interceptor()],
        options=[("grpc.so_reuseport", 1)],
    )
    server.add_generic_rpc_handlers([_Handler()])
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"worker {os.getpid()} ready", flush=True)
    server.wait_for_termination()


def main() -> None:
    port, count, where = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if where == "parent":
        hoptel.setup()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_serve, args=(port, where == "child")) for _ in range(count)]
    for worker in workers:
        worker.start()
    print(f"main {os.getpid()} started {count} workers", flush=True)
    while True:
        time.sleep(1.0)


if __name__ == "__main__":
    main()
