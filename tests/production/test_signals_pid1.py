"""SIGTERM to a gRPC server running as PID 1 of a PID namespace, as in a container without an init process.

The kernel ignores a signal left at ``SIG_DFL`` for a namespace's init, so such a server never ends on SIGTERM
(``docker stop`` and Kubernetes SIGKILL it after the grace period). With hoptel's handler the signal now flushes
the queue; the process then carries on as it would have, its telemetry still working, and flushes again on the
next SIGTERM. The namespace comes from ``unshare --pid`` (root, or unprivileged user namespaces, needed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from signals_grpc_app import METHOD
from signals_support import HERE, WAIT_S, AppProcess, app_env, started, wait_for
from support.ports import free_port

from hoptel.receiver import OTLPReceiver

LOST_GRACE_S = 2.0


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = [sys.executable, "-c", "import os; print(os.getpid())"]
    try:
        result = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", *probe], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == "1"


pytestmark = pytest.mark.skipif(not _unshare_works(), reason="needs `unshare --pid` (a new PID namespace)")


def _init_pid(app: AppProcess) -> int:
    """The host pid of the namespace's init: the one child of the ``unshare`` process."""

    def read() -> int | None:
        children = Path(f"/proc/{app.process.pid}/task/{app.process.pid}/children").read_text().split()
        return int(children[0]) if children else None

    return wait_for(read, "unshare to start the app")


def _finished_rpcs(metrics_port: int) -> float:
    """How many RPCs the server finished: its latency histogram's count, observed right after the span ended."""
    body = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10.0).text
    prefix = "grpc_server_handling_seconds_count{"
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(prefix))


def _call(port: int, request: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        assert channel.unary_unary(METHOD)(request.encode(), timeout=WAIT_S) == request.encode()


@pytest.mark.parametrize("signals", ["on", "off"])
def test_sigterm_to_pid_1_flushes_and_the_server_carries_on(
    receiver: OTLPReceiver, tmp_path: Path, signals: str
) -> None:
    """As PID 1 the server survives SIGTERM as it always did; with hoptel's handler each SIGTERM flushes first."""
    args = ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(HERE / "signals_grpc_app.py"), "sync"]
    metrics_port = free_port()
    env = app_env(receiver, HOPTEL_SIGNALS=signals, HOPTEL_METRICS_ADDR=f"127.0.0.1:{metrics_port}")
    with started(args, env, tmp_path / "app.log") as app:
        port, held = app.ready()
        assert held == ("SIGTERM" if signals == "on" else "none")
        init = _init_pid(app)
        for round_index in range(2):
            _call(port, f"round-{round_index}")
            wait_for(lambda: app.lines_with(f"handled round-{round_index}"), "the log line")  # noqa: B023
            # The span is queued once the RPC is finished (the client may see the answer a moment earlier).
            finished = round_index + 1
            wait_for(lambda: True if _finished_rpcs(metrics_port) >= finished else None, "the RPC finished")  # noqa: B023
            os.kill(init, signal.SIGTERM)  # from outside the namespace, as docker does
            if signals == "on":
                receiver.wait_for_spans(round_index + 1, timeout=WAIT_S)
            else:
                time.sleep(LOST_GRACE_S)
            assert app.process.poll() is None  # still running, as PID 1 always did
        if signals == "on":
            assert sorted(span.attributes["rpc.method"] for span in receiver.spans()) == ["Unary", "Unary"]
            bodies = sorted(log.body for log in receiver.wait_for_logs(2, timeout=WAIT_S))
            assert bodies == ["handled round-0", "handled round-1"]
        else:
            assert receiver.spans() == []
