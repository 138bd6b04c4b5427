"""SIGTERM to a gunicorn master: every worker flushes its spans and log records on the way out.

gunicorn and uvicorn's worker install their own signal handlers, which hoptel never replaces; a sync worker ends
with ``sys.exit(0)``, so ``atexit`` runs ``Telemetry.shutdown``; a uvicorn worker ends through uvicorn's graceful
shutdown (the ASGI lifespan flush) and uvicorn's re-raise of the signal (hoptel's handler, where the worker
imported the app after gunicorn reset SIGTERM to its default). With ``--preload`` the app is imported once in the
master and every forked worker flushes its own copy.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import pytest
from signals_support import WAIT_S, app_env, started, wait_for
from support.ports import free_port

from hoptel.receiver import OTLPReceiver

REQUESTS = 16


def _answered(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/items/warmup", timeout=5.0).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("preload", [False, True], ids=["import-per-worker", "preload"])
@pytest.mark.parametrize(
    ("worker_class", "module"),
    [("sync", "signals_wsgi_app:app"), ("uvicorn.workers.UvicornWorker", "signals_asgi_app:app")],
    ids=["sync", "uvicorn-worker"],
)
def test_gunicorn_workers_flush_at_exit(
    receiver: OTLPReceiver, tmp_path: Path, worker_class: str, module: str, preload: bool
) -> None:
    """Two workers serve requests; SIGTERM to the master exports every request's span and log record, status 0."""
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", worker_class, "-b", f"127.0.0.1:{port}"]
    args += ["--preload", module] if preload else [module]
    env = app_env(receiver, PYTHONWARNINGS="ignore::DeprecationWarning")  # uvicorn.workers is deprecated
    with started(args, env, tmp_path / "gunicorn.log") as master:
        wait_for(lambda: _answered(port), "gunicorn to answer")
        names = [f"item-{index}" for index in range(REQUESTS)]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=WAIT_S) as client:
            for name in names:
                assert client.get(f"/items/{name}").text == name
        names.append("warmup")
        wait_for(lambda: len(master.lines_with('"handled ')) >= len(names), "the workers' log lines")
        assert receiver.spans() == []
        master.signal(signal.SIGTERM)
        assert master.wait() == 0
        spans = receiver.wait_for_spans(len(names), timeout=WAIT_S)
        assert sorted(span.attributes["url.path"] for span in spans) == sorted(f"/items/{name}" for name in names)
        logs = receiver.wait_for_logs(len(names), timeout=WAIT_S, predicate=lambda log: log.body.startswith("handled"))
        assert sorted(log.body for log in logs) == sorted(f"handled {name}" for name in names)
