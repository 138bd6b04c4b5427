"""The gateway as a module for server command lines, several worker processes behind one port.

    export GATEWAY_ORDERS=127.0.0.1:50052 HOPTEL_METRICS_ADDR=127.0.0.1:9464
    uvicorn examples.services.gateway_app:app --workers 2 --port 8000
    gunicorn -w 2 -k uvicorn.workers.UvicornWorker -b 127.0.0.1:8000 examples.services.gateway_app:app

This is how services are usually deployed: the server imports the module in every worker process, and the module
calls ``hoptel.setup()`` as it is imported. All workers are configured with the same ``HOPTEL_METRICS_ADDR``; one of
them serves it, with the merged counts of every worker. ``python -m examples.demo --gateway-workers 2`` runs the
demo with its gateway started this way.

Environment: ``GATEWAY_ORDERS`` (orders' gRPC address, required), ``GATEWAY_ADDRESS`` (the ``host:port`` the server
listens on, for the readiness line the demo waits for; optional), and the usual ``OTEL_*`` / ``HOPTEL_*``.
"""

from __future__ import annotations

import os
import socket
import threading
import time

from examples.services import gateway, runtime

__all__ = ["ORDERS_VARIABLE", "app", "telemetry"]

ORDERS_VARIABLE = "GATEWAY_ORDERS"

orders_address = os.environ.get(ORDERS_VARIABLE)
if not orders_address:
    runtime.die("gateway", f"{ORDERS_VARIABLE} must name orders' gRPC address, host:port")

telemetry = runtime.start_telemetry("gateway")


def _announce() -> None:
    """Announce readiness once the server accepts connections (on a helper thread, so startup goes on).

    The lifespan's startup, which calls this, runs in each worker before uvicorn starts listening on the shared
    socket; announcing straight away let a busy machine's demo connect too early (connection refused).
    """
    address = os.environ.get("GATEWAY_ADDRESS")
    if address:
        threading.Thread(target=_announce_when_listening, args=(address,), name="gateway-ready", daemon=True).start()


def _announce_when_listening(address: str, limit_s: float = 60.0) -> None:
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1.0).close()
        except OSError:
            time.sleep(0.05)
            continue
        runtime.announce_ready("gateway", address, telemetry)
        return


app = gateway.build_app(orders_address, on_started=_announce)
