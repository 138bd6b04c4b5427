"""The RSS run's other processes: ``python -m benchmarks.memory.child server|receiver``, driven over stdin/stdout.

- ``server ENDPOINT RATIO``: a hoptel-instrumented echo server (``hoptel.setup()`` exporting to ENDPOINT, sampler
  ``parentbased_traceidratio`` at RATIO); prints ``ready <target>``.
- ``receiver``: an ``OTLPReceiver`` that forgets what it stored every half second (it would otherwise keep every
  span), counting the spans as they arrive; prints ``ready <grpc endpoint>``.

Then both answer one line per command: ``rss`` → ``<VmRSS in KiB>``, ``flush`` → ``ok`` (the server exports its
queued spans), ``spans`` → the number of spans received (receiver), ``quit`` → exit.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.memory.echo import rss_kib, serve, setup_env, telemetry
from hoptel.receiver import OTLPReceiver

__all__ = ["main"]


def _answer(handlers: dict[str, Callable[[], str]]) -> None:
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            return
        handler = handlers.get(command)
        print(handler() if handler is not None else f"unknown command {command!r}", flush=True)


def _server(endpoint: str, ratio: float) -> None:
    env = setup_env(endpoint, sampler="parentbased_traceidratio", ratio=ratio)
    with telemetry(env) as tel, serve(tel) as target:
        print(f"ready {target}", flush=True)

        def flush() -> str:
            return "ok" if tel.force_flush(30.0) else "timeout"

        _answer({"rss": lambda: str(rss_kib()), "flush": flush})


def _receiver() -> None:
    received = [0]
    lock = threading.Lock()

    def count(spans: Sequence[Any]) -> None:
        with lock:
            received[0] += len(spans)

    stop = threading.Event()
    with OTLPReceiver(on_spans=count) as rx:

        def forget() -> None:
            while not stop.wait(0.5):
                rx.clear()

        threading.Thread(target=forget, name="forget", daemon=True).start()
        print(f"ready {rx.grpc_endpoint}", flush=True)
        try:
            _answer({"rss": lambda: str(rss_kib()), "spans": lambda: str(received[0])})
        finally:
            stop.set()


def main(argv: Sequence[str]) -> None:
    """Run the child named by ``argv[0]``."""
    if argv[0] == "server":
        _server(argv[1], float(argv[2]))
    elif argv[0] == "receiver":
        _receiver()
    else:
        raise SystemExit(f"unknown child {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
