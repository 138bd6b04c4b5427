"""A process that exports spans, log records and metrics over OTLP until told to stop (run by the outage tests).

Usage: ``python outage_child.py PROTOCOL ENDPOINT CONTROL_DIR``. It writes its metrics URL to ``CONTROL_DIR/url``,
makes one gRPC client call to a closed port (a real hop: its latency series is what the OTLP metric push sends,
cumulatively, every 200 ms), ends a span and logs one line every 20 ms, and shuts down cleanly once
``CONTROL_DIR/stop`` exists. Its stdout and stderr are what the test reads: hoptel's JSON lines, and nothing else.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from pathlib import Path

import grpc

import hoptel

TICK_S = 0.02
MAX_RUN_S = 120.0  # a test that never says stop does not leave this process behind for long


def main() -> None:
    protocol, endpoint, control = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    tel = hoptel.setup(
        "outage-child",
        exporter_otlp_protocol=protocol,
        exporter_otlp_endpoint=endpoint,
        logs_exporter="otlp",
        metrics_exporter=("otlp", "prometheus"),
        metric_export_interval=200,
        metrics_addr="127.0.0.1:0",
        bsp_schedule_delay=100,
        signals=False,
    )
    (control / "url.tmp").write_text(str(tel.metrics_url))
    (control / "url.tmp").rename(control / "url")
    _one_client_hop(tel)
    log = logging.getLogger("outage.child")
    started = time.monotonic()
    tick = 0
    while not (control / "stop").exists() and time.monotonic() - started < MAX_RUN_S:
        with tel.tracer.start_as_current_span(f"tick-{tick}"):
            log.info("tick %d", tick)
        tick += 1
        time.sleep(TICK_S)
    tel.shutdown(timeout=5.0)


def _one_client_hop(tel: hoptel.Telemetry) -> None:
    """One instrumented unary call to a port nothing listens on: it fails UNAVAILABLE and is recorded."""
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = grpc.intercept_channel(grpc.insecure_channel(f"127.0.0.1:{port}"), hoptel.client_interceptor(tel))
    try:
        channel.unary_unary("/outage.Child/Hop")(b"", timeout=10)
    except grpc.RpcError:
        pass
    finally:
        channel.close()


if __name__ == "__main__":
    main()
