"""``python -m hoptel.receiver``: run an OTLP receiver in the foreground; print each finished trace and the metrics.

The first line on stdout names both endpoints, for a parent process to parse::

    hoptel.receiver grpc=http://127.0.0.1:4317 http=http://127.0.0.1:4318

Then each trace is printed as a tree (see ``format_trace``) once no span of it has arrived for ``--idle``
seconds. Metrics are printed as a block, one line per histogram series (``format_metrics``: count, p50, p99),
once no metric point has arrived for ``--idle`` seconds after new ones did::

    metrics (1 series):
      rpc.server.call.duration{rpc.grpc.status_code=0,rpc.method=Get,rpc.service=shop.Cart,rpc.system=grpc}  count=3

SIGINT or SIGTERM stops the receiver, prints the traces still pending (and metrics not yet printed), and exits
with status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from hoptel.receiver.metrics import ReceivedMetric
from hoptel.receiver.metrics_view import format_metrics, summarize_metrics
from hoptel.receiver.model import ReceivedSpan
from hoptel.receiver.receiver import OTLPReceiver
from hoptel.receiver.tree import format_trace

__all__ = ["main", "parse_args"]

_SIGNAL_POLL_S = 0.25
"""The longest the main thread waits for spans before it checks for a signal (see ``main``)."""


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is ``None``)."""
    parser = argparse.ArgumentParser(
        prog="python -m hoptel.receiver",
        description="Receive OTLP over gRPC and HTTP; print each finished trace as a tree and the metrics' series.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--grpc-port", type=_port, default=4317, help="OTLP/gRPC port, 0 = any (default: 4317)")
    parser.add_argument("--http-port", type=_port, default=4318, help="OTLP/HTTP port, 0 = any (default: 4318)")
    parser.add_argument(
        "--idle",
        type=_non_negative,
        default=1.0,
        help="print a trace once no span of it arrived for this many seconds (default: %(default)s)",
    )
    return parser.parse_args(argv)


class _Pending:
    """Traces still receiving spans, each with the moment it has been quiet long enough."""

    def __init__(self, idle_s: float) -> None:
        self._idle_s = idle_s
        self._traces: dict[str, tuple[list[ReceivedSpan], float]] = {}

    def add(self, spans: Sequence[ReceivedSpan], now: float) -> None:
        due = now + self._idle_s
        for span in spans:
            trace, _ = self._traces.get(span.trace_id, ([], 0.0))
            trace.append(span)
            self._traces[span.trace_id] = (trace, due)

    def next_due(self) -> float | None:
        return min((due for _, due in self._traces.values()), default=None)

    def pop_due(self, now: float | None) -> list[list[ReceivedSpan]]:
        """Remove and return the traces due by ``now`` (all of them when ``None``), oldest first."""
        done = [tid for tid, (_, due) in self._traces.items() if now is None or due <= now]
        return [self._traces.pop(tid)[0] for tid in done]


def _print_traces(traces: list[list[ReceivedSpan]]) -> None:
    for trace in traces:
        print(format_trace(trace) + "\n", flush=True)


class _MetricsPrinter:
    """Prints every series received so far once new metric points have been quiet for ``idle_s``.

    ``add`` is the receiver's ``on_metrics`` listener (receiving threads); ``poll`` runs on the main thread.
    """

    def __init__(self, idle_s: float) -> None:
        self._idle_s = idle_s
        self._arrivals: queue.SimpleQueue[Sequence[ReceivedMetric]] = queue.SimpleQueue()
        self._points: list[ReceivedMetric] = []
        self._due: float | None = None  # when the points not printed yet have been quiet long enough

    def add(self, points: Sequence[ReceivedMetric]) -> None:
        self._arrivals.put(points)

    def poll(self, now: float, force: bool = False) -> None:
        while True:
            try:
                self._points.extend(self._arrivals.get_nowait())
            except queue.Empty:
                break
            self._due = now + self._idle_s
        if self._due is None or (not force and self._due > now):
            return
        self._due = None
        print(f"metrics ({len(summarize_metrics(self._points))} series):", flush=True)
        text = format_metrics(self._points)
        if text:
            print("\n".join(f"  {line}" for line in text.splitlines()), flush=True)
        print(flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the receiver until SIGINT or SIGTERM.

    Args:
        argv: The arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        The exit status: 0 after a signal, 1 when a port cannot be bound.
    """
    args = parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")  # a span name must not crash an ASCII terminal
    arrivals: queue.SimpleQueue[Sequence[ReceivedSpan]] = queue.SimpleQueue()
    metrics = _MetricsPrinter(args.idle)
    receiver = OTLPReceiver(args.host, args.grpc_port, args.http_port, on_spans=arrivals.put, on_metrics=metrics.add)
    try:
        receiver.start()
    except OSError as exc:
        print(f"hoptel.receiver: {exc}", file=sys.stderr)
        return 1
    # The handlers only set a flag, which the loop checks: an exception raised wherever the signal lands could
    # drop a batch between taking it off the queue and recording it.
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    pending = _Pending(args.idle)
    try:
        print(f"hoptel.receiver grpc={receiver.grpc_endpoint} http={receiver.http_endpoint}", flush=True)
        while not stop.is_set():
            due = pending.next_due()
            # Never block for long: the kernel may deliver the signal to one of grpc's threads, and then Python
            # runs the handler only when this (main) thread next wakes up.
            timeout = _SIGNAL_POLL_S if due is None else min(_SIGNAL_POLL_S, max(0.0, due - time.monotonic()))
            with contextlib.suppress(queue.Empty):
                pending.add(arrivals.get(timeout=timeout), time.monotonic())
            _print_traces(pending.pop_due(time.monotonic()))
            metrics.poll(time.monotonic())
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: a handler not installed from Python, which cannot be put back
                signal.signal(sig, handler)
        receiver.stop()
    while True:  # spans that arrived after the signal, then whatever is still pending
        try:
            pending.add(arrivals.get_nowait(), time.monotonic())
        except queue.Empty:
            break
    _print_traces(pending.pop_due(None))
    metrics.poll(time.monotonic(), force=True)
    print("hoptel.receiver stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
