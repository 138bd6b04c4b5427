"""A process that exports spans and log records over OTLP until told to stop (run by the outage tests).

Usage: ``python outage_child.py PROTOCOL ENDPOINT CONTROL_DIR``. It writes its metrics URL to ``CONTROL_DIR/url``,
ends a span and logs one line every 20 ms, and shuts down cleanly once ``CONTROL_DIR/stop`` exists. Its stdout
and stderr are what the test reads: hoptel's JSON lines, and nothing else.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

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
        metrics_addr="127.0.0.1:0",
        bsp_schedule_delay=100,
        signals=False,
    )
    (control / "url.tmp").write_text(str(tel.metrics_url))
    (control / "url.tmp").rename(control / "url")
    log = logging.getLogger("outage.child")
    started = time.monotonic()
    tick = 0
    while not (control / "stop").exists() and time.monotonic() - started < MAX_RUN_S:
        with tel.tracer.start_as_current_span(f"tick-{tick}"):
            log.info("tick %d", tick)
        tick += 1
        time.sleep(TICK_S)
    tel.shutdown(timeout=5.0)


if __name__ == "__main__":
    main()
