"""The gateway with several uvicorn workers: ``uvicorn examples.services.gateway_app:app --workers N``.

``python -m examples.services.gateway_workers --workers 2 --port 8000 --orders 127.0.0.1:50052`` is that
command line, run in this process through uvicorn's own entry point, plus the demo's ``--watch-stdin``: when
standard input reaches end of file (the demo closed it, or died), it sends itself SIGTERM, which uvicorn's
supervisor answers by stopping its workers gracefully. Each worker imports ``examples.services.gateway_app``,
which calls ``hoptel.setup()``; all share the ``HOPTEL_METRICS_ADDR`` they inherit.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

__all__ = ["main", "uvicorn_arguments"]


def uvicorn_arguments(host: str, port: int, workers: int) -> list[str]:
    """The ``uvicorn`` command line's arguments for the gateway with ``workers`` processes on ``host:port``."""
    return [
        "examples.services.gateway_app:app",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--timeout-graceful-shutdown",
        "2",
    ]


def _stop_at_end_of_input() -> None:
    sys.stdin.buffer.read()  # returns at end of file: the demo closed its end, or died
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, then hand over to uvicorn's command line (it does not return until stopped)."""
    parser = argparse.ArgumentParser(prog="python -m examples.services.gateway_workers", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the port all workers accept on (not 0)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--orders", required=True, help="orders' gRPC address, host:port")
    parser.add_argument("--watch-stdin", action="store_true", help="stop when standard input reaches end of file")
    args = parser.parse_args(argv)
    os.environ["GATEWAY_ORDERS"] = args.orders
    os.environ["GATEWAY_ADDRESS"] = f"{args.host}:{args.port}"
    if args.watch_stdin and sys.stdin is not None:
        threading.Thread(target=_stop_at_end_of_input, name="stdin-watch", daemon=True).start()
    import uvicorn  # here: --help needs no server

    uvicorn.main.main(args=uvicorn_arguments(args.host, args.port, args.workers), prog_name="uvicorn")


if __name__ == "__main__":
    main()
