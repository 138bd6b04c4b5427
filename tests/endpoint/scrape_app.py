"""A hoptel process for the Prometheus scrape test: a gRPC server and an ASGI app, each called a known number of times.

Run by test_prometheus_scrape.py as a subprocess, configured entirely through the environment
(``HOPTEL_METRICS_ADDR=127.0.0.1:0``, ``OTEL_EXPORTER_OTLP_*`` pointing at the test's OTLPReceiver). It makes
``--grpc-calls`` unary calls and ``--http-requests`` GET requests through hoptel's client instrumentation to its
own instrumented servers, flushes the spans, prints one JSON line ``{"metrics_url": ...}`` and keeps serving
metrics until its stdin is closed (or ``--max-seconds`` pass), then shuts down.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent import futures
from typing import Any

import grpc
import httpx
import uvicorn

import hoptel

__all__ = ["GRPC_METHOD", "GRPC_SERVICE", "HTTP_PATH", "main"]

GRPC_SERVICE = "hoptel.test.Echo"
GRPC_METHOD = "Say"
HTTP_PATH = "/hello"
_STARTUP_TIMEOUT_S = 30.0

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


def _start_grpc() -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[hoptel.server_interceptor()])
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(GRPC_SERVICE, {GRPC_METHOD: handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _start_http() -> tuple[uvicorn.Server, threading.Thread, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(hoptel.ASGIMiddleware(_hello), log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(int(_STARTUP_TIMEOUT_S / 0.05)):
        if server.started:
            started.set()
            break
        started.wait(0.05)
    if not started.is_set():
        raise RuntimeError("uvicorn did not start")
    return server, thread, port


def main(argv: list[str] | None = None) -> int:
    """Serve, call, report the metrics URL, and wait for stdin to close."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grpc-calls", type=int, required=True)
    parser.add_argument("--http-requests", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)

    tel = hoptel.setup(service_name="scrape-app")
    grpc_server, grpc_port = _start_grpc()
    http_server, http_thread, http_port = _start_http()
    try:
        channel = grpc.intercept_channel(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"), hoptel.client_interceptor())
        say = channel.unary_unary(f"/{GRPC_SERVICE}/{GRPC_METHOD}", request_serializer=None, response_deserializer=None)
        for index in range(args.grpc_calls):
            message = f"hello {index}".encode()
            if say(message, timeout=10.0) != message:
                raise RuntimeError("the echo service answered something else")
        channel.close()

        with httpx.Client(transport=hoptel.HTTPTransport(), timeout=10.0) as client:
            for _ in range(args.http_requests):
                client.get(f"http://127.0.0.1:{http_port}{HTTP_PATH}").raise_for_status()

        tel.force_flush(timeout=10.0)
        print(json.dumps({"metrics_url": tel.metrics_url}), flush=True)

        stdin_closed = threading.Event()

        def wait_for_eof() -> None:
            sys.stdin.read()
            stdin_closed.set()

        threading.Thread(target=wait_for_eof, daemon=True).start()
        stdin_closed.wait(args.max_seconds)
    finally:
        http_server.should_exit = True
        http_thread.join(10.0)
        grpc_server.stop(grace=1.0).wait(10.0)
        tel.shutdown(timeout=5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
