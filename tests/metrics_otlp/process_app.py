"""A process that pushes OTLP metrics of its own RPCs, run by test_processes.py.

``python process_app.py calls N``: a real gRPC echo server and client in this process, N unary calls, a flush.
``python process_app.py fork PARENT CHILD``: setup(), then fork; the child makes CHILD hops and flushes, the parent
waits for it, makes PARENT hops and flushes. Hops go through the real recorder (no server: gRPC and fork do not
mix). Settings come from the environment (the OTLP endpoint of the test's receiver).
"""

from __future__ import annotations

import os
import sys

import grpc

import hoptel
from hoptel.interceptors.grpc.names import UNARY
from hoptel.interceptors.recorder import HopRecorder

FLUSH_S = 15.0


def _calls(n: int) -> None:
    from support import grpc_echo as echo
    from support.grpc_servers import sync_grpc_server

    tel = hoptel.setup("process-app")
    with sync_grpc_server(echo.sync_handler(), interceptors=[hoptel.server_interceptor(tel)]) as target:
        channel = grpc.intercept_channel(grpc.insecure_channel(target), hoptel.client_interceptor(tel))
        with channel:
            for _ in range(n):
                channel.unary_unary(echo.UNARY)(b"ok", timeout=10)
    if not tel.flush(FLUSH_S):
        sys.exit("flush failed")
    tel.shutdown()


def _hops(tel: hoptel.Telemetry, n: int) -> None:
    recorder = HopRecorder.of(tel)
    route = recorder.grpc_route("server", UNARY, "/fork.Test/Call")
    for _ in range(n):
        recorder.start_grpc_server(route, None).finish(grpc.StatusCode.OK)


def _fork(parent: int, child: int) -> None:
    tel = hoptel.setup("process-app")
    pid = os.fork()
    if pid == 0:
        try:
            _hops(tel, child)
            code = 0 if tel.flush(FLUSH_S) else 3
        finally:
            os._exit(locals().get("code", 4))
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"child failed: {status}")
    _hops(tel, parent)
    if not tel.flush(FLUSH_S):
        sys.exit("flush failed")
    tel.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "calls":
        _calls(int(sys.argv[2]))
    else:
        _fork(int(sys.argv[2]), int(sys.argv[3]))
