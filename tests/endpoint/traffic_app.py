"""A hoptel process with steady traffic, some of it failing, for the dashboard and recording-rule test.

Run by test_rules_and_dashboard_live.py as a subprocess (``tests/`` on ``PYTHONPATH``), configured through the
environment (``HOPTEL_METRICS_ADDR``, ``OTEL_TRACES_EXPORTER=none``). It serves a gRPC service and a Starlette app
(under uvicorn), both instrumented by hoptel, and calls them through hoptel's gRPC client interceptor and httpx
transport every ``--period`` seconds until its stdin is closed (or ``--max-seconds`` pass). Each round:

- gRPC ``hoptel.test.Shop``: ``Get`` (OK), ``Fail`` (INTERNAL, a server error), ``Find`` (NOT_FOUND, the caller's);
- HTTP ``GET /items/{item_id}``: 200, except item 0 which answers 503; ``GET /nowhere``: 404 with no route.
"""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent import futures
from itertools import count

import grpc
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from support.uvicorn_server import run_uvicorn

import hoptel

__all__ = ["GRPC_SERVICE", "ITEM_ROUTE", "main"]

GRPC_SERVICE = "hoptel.test.Shop"
ITEM_ROUTE = "/items/{item_id}"
_CALL_TIMEOUT_S = 10.0


def _get(request: bytes, context: grpc.ServicerContext) -> bytes:
    return request


def _fail(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.INTERNAL, "the shop is on fire")
    raise AssertionError("abort() raises")  # pragma: no cover


def _find(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    raise AssertionError("abort() raises")  # pragma: no cover


async def _item(request: Request) -> PlainTextResponse:
    if request.path_params["item_id"] == "0":
        return PlainTextResponse("come back later", status_code=503)
    return PlainTextResponse("an item")


def _start_grpc() -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[hoptel.server_interceptor()])
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(f) for name, f in {"Get": _get, "Fail": _fail, "Find": _find}.items()
    }
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(GRPC_SERVICE, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _call(say: grpc.UnaryUnaryMultiCallable[bytes, bytes]) -> None:
    try:
        say(b"hello", timeout=_CALL_TIMEOUT_S)
    except grpc.RpcError as error:
        if error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.NOT_FOUND):
            raise


def main(argv: list[str] | None = None) -> int:
    """Serve and call until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--period", type=float, default=0.2, help="seconds between rounds of calls")
    parser.add_argument("--max-seconds", type=float, default=180.0)
    args = parser.parse_args(argv)

    tel = hoptel.setup(service_name="traffic-app")
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    deadline = threading.Timer(args.max_seconds, stop.set)
    deadline.daemon = True
    deadline.start()
    app = hoptel.ASGIMiddleware(Starlette(routes=[Route(ITEM_ROUTE, _item)]))
    grpc_server, grpc_port = _start_grpc()
    try:
        with (
            run_uvicorn(app) as base_url,
            grpc.intercept_channel(
                grpc.insecure_channel(f"127.0.0.1:{grpc_port}"), hoptel.client_interceptor()
            ) as channel,
            httpx.Client(transport=hoptel.HTTPTransport(), base_url=base_url, timeout=_CALL_TIMEOUT_S) as client,
        ):
            methods = [
                channel.unary_unary(f"/{GRPC_SERVICE}/{name}", request_serializer=None, response_deserializer=None)
                for name in ("Get", "Get", "Fail", "Find")
            ]
            for round_number in count():
                for method in methods:
                    _call(method)
                client.get(f"/items/{round_number % 4}")
                client.get("/nowhere")
                if stop.wait(args.period):
                    break
    finally:
        grpc_server.stop(grace=1.0).wait(10.0)
        tel.shutdown(timeout=5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
