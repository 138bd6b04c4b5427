"""An application that knows nothing of hoptel: one gRPC call to itself and one httpx request, then it exits.

Run it under ``opentelemetry-instrument`` (the entry-point tests do). It prints ``done`` when both calls worked.
"""

from __future__ import annotations

import http.server
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx

METHOD = "/zerocode.App/Echo"


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    """Serve, call, stop."""
    pool = ThreadPoolExecutor(2)
    server = grpc.server(pool)
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("zerocode.App", {"Echo": handler})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert channel.unary_unary(METHOD, None, None)(b"hi", timeout=10) == b"hi"
        with httpx.Client(timeout=10) as client:
            assert client.get(f"http://127.0.0.1:{web.server_port}/ok").text == "ok"
    finally:
        web.shutdown()
        server.stop(None).wait(5)
        pool.shutdown()
    print("done", flush=True)


if __name__ == "__main__":
    main()
