"""What every demo service process shares: its command line, telemetry, readiness line, and how it is stopped.

A service is told where to listen (``--port 0``, the default, picks a free port) and where its peers are. Once it
accepts connections it prints one readiness line on stdout::

    hoptel-demo ready {"service": "inventory", "address": "127.0.0.1:40321", "metrics_url": "http://..."}

which is how ``examples.demo`` learns the ports it did not choose. A service stops cleanly (flushing its spans)
on SIGTERM or SIGINT, and with ``--watch-stdin`` also when its standard input reaches end of file: the demo
holds the other end of that pipe, so a demo killed with SIGKILL still takes its services down with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

import hoptel

__all__ = [
    "READY_PREFIX",
    "ServiceArgs",
    "announce_ready",
    "bind_listener",
    "die",
    "on_stop_request",
    "parse_args",
    "serve_asgi",
    "start_telemetry",
]

READY_PREFIX = "hoptel-demo ready "
"""Starts the one stdout line a service prints once it accepts connections; JSON follows."""

_STARTUP_POLL_S = 0.02


class ServiceArgs(argparse.Namespace):
    """The parsed command line of a service (the peers only where the service has them)."""

    host: str
    port: int
    watch_stdin: bool
    orders: str
    inventory: str
    pricing: str


def parse_args(service: str, description: str, peers: dict[str, str], argv: list[str] | None = None) -> ServiceArgs:
    """Parse ``--host``, ``--port``, ``--watch-stdin`` and one required option per peer.

    Args:
        service: The service's name, for ``--help``.
        description: One line saying what the service does.
        peers: Peer option name -> help text, e.g. ``{"orders": "orders' gRPC address, host:port"}``.
        argv: The arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(prog=f"python -m examples.services.{service}", description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument(
        "--watch-stdin", action="store_true", help="stop when standard input reaches end of file (the demo sets it)"
    )
    for name, text in peers.items():
        parser.add_argument(f"--{name}", required=True, help=text)
    return parser.parse_args(argv, namespace=ServiceArgs())


def start_telemetry(default_name: str) -> hoptel.Telemetry:
    """``hoptel.setup()`` with ``OTEL_SERVICE_NAME`` when set (the demo sets it), else ``default_name``.

    Everything else comes from the environment: where spans go (``OTEL_EXPORTER_OTLP_*``), which propagators
    (``OTEL_PROPAGATORS``), the metrics port (``HOPTEL_METRICS_ADDR``) and the log format (``HOPTEL_LOG_FORMAT``).
    A bad value or a taken metrics port ends the process with a one-line message and status 1.
    """
    try:
        return hoptel.setup(service_name=os.environ.get("OTEL_SERVICE_NAME") or default_name)
    except (ValueError, OSError) as error:
        die(default_name, f"telemetry setup failed: {error}")


def announce_ready(service: str, address: str, telemetry: hoptel.Telemetry) -> None:
    """Print the readiness line: the service accepts connections at ``address`` (``host:port``)."""
    details = {"service": service, "address": address, "metrics_url": telemetry.metrics_url, "pid": os.getpid()}
    # One write call: print() writes the text and the newline separately, and hoptel's log thread writes to
    # stdout too, so a log line could land between them.
    sys.stdout.write(f"{READY_PREFIX}{json.dumps(details)}\n")
    sys.stdout.flush()


def die(service: str, message: str) -> NoReturn:
    """Print ``service: message`` on stderr and exit with status 1."""
    print(f"{service}: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def on_stop_request(stop: Callable[[], None], watch_stdin: bool) -> None:
    """Call ``stop`` on SIGTERM or SIGINT, and on end of standard input when ``watch_stdin``.

    ``stop`` may run in a signal handler or on the stdin thread, so it must only set a flag or an event (or use
    ``loop.call_soon_threadsafe``). Call this from the main thread.
    """

    def handler(signum: int, frame: Any) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    if watch_stdin and sys.stdin is not None:

        def wait_for_eof() -> None:
            sys.stdin.buffer.read()  # returns at end of file: the demo closed its end, or died
            stop()

        threading.Thread(target=wait_for_eof, name="stdin-watch", daemon=True).start()


def bind_listener(service: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = a free port); a taken port ends the process clearly."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        die(service, f"cannot listen on {host}:{port}: {error.strerror or error}")
    return sock


def serve_asgi(service: str, app: Any, args: ServiceArgs, telemetry: hoptel.Telemetry) -> None:
    """Run ``app`` under uvicorn on ``args.host:args.port`` until asked to stop, then flush the telemetry.

    The socket is bound here rather than by uvicorn so that port 0 works and the readiness line can name the
    port actually chosen. uvicorn's own logging config is turned off: its loggers go through hoptel's.
    """
    import uvicorn  # here, so that the gRPC-only services do not load it

    sock = bind_listener(service, args.host, args.port)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True  # uvicorn's main loop checks this flag every tick

    # uvicorn swaps in its own SIGTERM/SIGINT handlers while serving and re-raises the signal afterwards;
    # ours are in place by then, so that re-raise only sets the flag again instead of killing the process.
    on_stop_request(stop, args.watch_stdin)

    async def main() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(_STARTUP_POLL_S)
        if server.started:
            announce_ready(service, f"{host}:{port}", telemetry)
        await serving

    try:
        asyncio.run(main())
    finally:
        sock.close()
        telemetry.shutdown()
