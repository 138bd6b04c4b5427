"""SIGTERM to ``uvicorn mod:app`` with ``hoptel.setup()`` at import: every request's span and log record is flushed.

uvicorn takes SIGTERM over while it serves, shuts down gracefully (ASGI lifespan shutdown included), then puts
back the disposition it found and raises the signal again, so the process ends killed by SIGTERM (-15) and runs no
``atexit``. Two flushes cover that path: hoptel's handler, installed at import where SIGTERM still had its default
disposition and reached through uvicorn's re-raise, and ``hoptel.ASGIMiddleware`` at lifespan shutdown (what is
left when ``setup()`` runs after uvicorn took the signal over, as in ``--workers`` processes). Each is shown alone;
with both off the spans are lost, which shows each one is what delivered them.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from signals_support import WAIT_S, AppProcess, app_env, started, wait_for
from support.ports import free_port

from hoptel.receiver import OTLPReceiver

REQUESTS = 12
LOST_GRACE_S = 2.0


def _serve(port: int) -> None:
    """Wait until the app answers on ``port``."""

    def answered() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/items/warmup", timeout=5.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answered, "uvicorn to answer")


def _drive(port: int) -> list[str]:
    names = [f"item-{index}" for index in range(REQUESTS)]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT_S) as client:
        for name in names:
            assert client.get(f"/items/{name}").text == name
    return ["warmup", *names]


def _handled(app: AppProcess) -> int:
    return len(app.lines_with('"handled '))


@pytest.mark.parametrize(
    ("signals", "lifespan", "flushed"),
    [
        ("on", "on", True),
        ("off", "on", True),  # the lifespan flush alone
        ("on", "off", True),  # hoptel's handler alone, reached through uvicorn's re-raise
        ("off", "off", False),  # neither: the spans are lost
    ],
    ids=["both", "lifespan-only", "handler-only", "neither"],
)
def test_uvicorn_sigterm_flushes(
    receiver: OTLPReceiver, tmp_path: Path, signals: str, lifespan: str, flushed: bool
) -> None:
    """The process ends by SIGTERM as under plain uvicorn; either flush alone exports every span and log record."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "signals_asgi_app:app", "--port", str(port), "--lifespan", lifespan]
    with started(args, app_env(receiver, HOPTEL_SIGNALS=signals), tmp_path / "uvicorn.log") as app:
        _serve(port)
        assert app.lines_with("IMPORTED") == [f"IMPORTED {'SIGTERM' if signals == 'on' else 'none'}"]
        names = _drive(port)
        wait_for(lambda: _handled(app) >= len(names), "the app's log lines")
        assert receiver.spans() == []
        app.signal(signal.SIGTERM)
        assert app.wait() == -signal.SIGTERM
        if not flushed:
            time.sleep(LOST_GRACE_S)
            assert receiver.spans() == []
            return
        spans = receiver.wait_for_spans(len(names), timeout=WAIT_S)
        assert sorted(span.attributes["url.path"] for span in spans) == sorted(f"/items/{name}" for name in names)
        assert {span.kind for span in spans} == {"SERVER"}
        logs = receiver.wait_for_logs(len(names), timeout=WAIT_S, predicate=lambda log: log.body.startswith("handled"))
        assert sorted(log.body for log in logs) == sorted(f"handled {name}" for name in names)


def test_uvicorn_workers_flush_at_lifespan_shutdown(receiver: OTLPReceiver, tmp_path: Path) -> None:
    """``--workers 2``: workers import the app after uvicorn took SIGTERM over; the lifespan flush exports it all."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "signals_asgi_app:app", "--port", str(port), "--workers", "2"]
    with started(args, app_env(receiver), tmp_path / "uvicorn.log") as app:
        wait_for(lambda: len(app.lines_with("IMPORTED")) == 2, "both workers to import the app")
        _serve(port)
        assert app.lines_with("IMPORTED") == ["IMPORTED none", "IMPORTED none"]  # uvicorn's handler was there first
        names = _drive(port)
        wait_for(lambda: _handled(app) >= len(names), "the workers' log lines")
        assert receiver.spans() == []
        app.signal(signal.SIGTERM)
        assert app.wait() == 0  # the supervisor exits normally once its workers are gone
        spans = receiver.wait_for_spans(len(names), timeout=WAIT_S)
        assert sorted(span.attributes["url.path"] for span in spans) == sorted(f"/items/{name}" for name in names)
        logs = receiver.wait_for_logs(len(names), timeout=WAIT_S, predicate=lambda log: log.body.startswith("handled"))
        assert sorted(log.body for log in logs) == sorted(f"handled {name}" for name in names)
