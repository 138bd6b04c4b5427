"""SIGTERM to gRPC servers started as real processes: queued spans and log records are flushed before the exit.

The apps batch with a ten-minute delay, so a span or an OTLP log record reaches the receiver only through a
flush. Each test checks the receiver was empty before the signal.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import grpc
import pytest
from signals_grpc_app import METHOD
from signals_support import WAIT_S, AppProcess, app_env, grpc_app, wait_for

from hoptel.receiver import OTLPReceiver
from hoptel.shutdown_signals import SIGNAL_FLUSH_S

CALLS = 20
LOST_GRACE_S = 2.0
"""How long a test that expects nothing to arrive keeps looking."""


def _drive(port: int, calls: int = CALLS) -> list[str]:
    """Make ``calls`` unary RPCs (a plain, uninstrumented channel); returns the requests sent."""
    requests = [f"request-{index}" for index in range(calls)]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        unary = channel.unary_unary(METHOD)
        for request in requests:
            assert unary(request.encode(), timeout=WAIT_S) == request.encode()
    return requests


def _before_signal(receiver: OTLPReceiver, app: AppProcess, requests: list[str]) -> None:
    """The app wrote its log lines; nothing reached the receiver yet (only a flush can export)."""
    wait_for(lambda: len(app.lines_with("handled request-")) >= len(requests), "the app's log lines")
    assert receiver.spans() == []
    assert receiver.logs() == []


def _everything_arrived(receiver: OTLPReceiver, app: AppProcess, requests: list[str], service: str) -> None:
    """Every RPC's SERVER span and OTLP log record is at the receiver, and every log line was written."""
    spans = receiver.wait_for_spans(len(requests), timeout=WAIT_S)
    assert len(spans) == len(requests)
    assert {span.kind for span in spans} == {"SERVER"}
    assert {span.service_name for span in spans} == {service}
    logs = receiver.wait_for_logs(len(requests), timeout=WAIT_S, predicate=lambda log: log.body.startswith("handled"))
    assert sorted(log.body for log in logs) == sorted(f"handled {request}" for request in requests)
    written = {line.split("handled ", 1)[1].split('"', 1)[0] for line in app.lines_with("handled request-")}
    assert written == set(requests)


def test_sigterm_flushes_a_plain_sync_server(receiver: OTLPReceiver, tmp_path: Path) -> None:
    """A sync grpc.server in wait_for_termination(): SIGTERM exports every span and log record, then kills (-15)."""
    with grpc_app("sync", app_env(receiver), tmp_path / "app.log") as app:
        port, held = app.ready()
        assert held == "SIGTERM"  # SIGINT keeps Python's KeyboardInterrupt handler
        requests = _drive(port)
        _before_signal(receiver, app, requests)
        app.signal(signal.SIGTERM)
        assert app.wait() == -signal.SIGTERM
        _everything_arrived(receiver, app, requests, "signals-grpc-sync")
        assert app.lines_with("TERMINATED") == []  # ended by the signal, not by a return


def test_opting_out_loses_the_queue(receiver: OTLPReceiver, tmp_path: Path) -> None:
    """With HOPTEL_SIGNALS=off SIGTERM kills the server at once: the queued spans and log records are lost."""
    with grpc_app("sync", app_env(receiver, HOPTEL_SIGNALS="off"), tmp_path / "app.log") as app:
        port, held = app.ready()
        assert held == "none"
        requests = _drive(port)
        _before_signal(receiver, app, requests)
        app.signal(signal.SIGTERM)
        assert app.wait() == -signal.SIGTERM
        time.sleep(LOST_GRACE_S)
        assert receiver.spans() == []
        assert receiver.logs() == []


def test_the_apps_own_handler_is_kept_and_exit_flushes(receiver: OTLPReceiver, tmp_path: Path) -> None:
    """A SIGTERM handler the app installed before setup() stays: it runs, and the normal exit flushes (status 0)."""
    with grpc_app("sync", app_env(receiver, SIGNALS_APP_HANDLER="1"), tmp_path / "app.log") as app:
        port, held = app.ready()
        assert held == "none"
        requests = _drive(port)
        _before_signal(receiver, app, requests)
        app.signal(signal.SIGTERM)
        assert app.wait() == 0
        assert app.lines_with("APP-HANDLER 15") != []
        assert app.lines_with("TERMINATED") != []
        _everything_arrived(receiver, app, requests, "signals-grpc-sync")


def test_sigint_unwinds_through_atexit(receiver: OTLPReceiver, tmp_path: Path) -> None:
    """SIGINT keeps Python's handler: KeyboardInterrupt unwinds, atexit flushes, and Python exits by SIGINT."""
    with grpc_app("sync", app_env(receiver), tmp_path / "app.log") as app:
        port, _ = app.ready()
        requests = _drive(port)
        _before_signal(receiver, app, requests)
        app.signal(signal.SIGINT)
        assert app.wait() == -signal.SIGINT
        assert app.lines_with("KeyboardInterrupt") != []
        _everything_arrived(receiver, app, requests, "signals-grpc-sync")


@pytest.mark.parametrize("own_handler", [False, True], ids=["default", "add_signal_handler"])
def test_sigterm_flushes_a_grpc_aio_server(receiver: OTLPReceiver, tmp_path: Path, own_handler: bool) -> None:
    """grpc.aio under asyncio.run: SIGTERM flushes and kills; a loop.add_signal_handler() of the app is kept."""
    extra = {"SIGNALS_APP_HANDLER": "1"} if own_handler else {}
    with grpc_app("aio", app_env(receiver, **extra), tmp_path / "app.log") as app:
        port, held = app.ready()
        assert held == ("none" if own_handler else "SIGTERM")
        requests = _drive(port)
        _before_signal(receiver, app, requests)
        app.signal(signal.SIGTERM)
        assert app.wait() == (0 if own_handler else -signal.SIGTERM)
        assert (app.lines_with("APP-HANDLER 15") != []) is own_handler
        _everything_arrived(receiver, app, requests, "signals-grpc-aio")


def test_a_hanging_collector_cannot_hold_the_exit(receiver: OTLPReceiver, tmp_path: Path) -> None:
    """Against a collector that never answers, SIGTERM still ends the process within the flush bound (-15)."""
    receiver.delay_s = 10 * WAIT_S
    env = app_env(receiver, OTEL_EXPORTER_OTLP_TIMEOUT="120000", OTEL_BSP_EXPORT_TIMEOUT="120000")
    with grpc_app("sync", env, tmp_path / "app.log") as app:
        port, _ = app.ready()
        requests = _drive(port)
        _before_signal(receiver, app, requests)
        sent = app.signal(signal.SIGTERM)
        assert app.wait() == -signal.SIGTERM
        took = time.monotonic() - sent
        assert took < SIGNAL_FLUSH_S + 3.0, took
        written = app.lines_with("handled request-")
        assert len(written) == len(requests)
