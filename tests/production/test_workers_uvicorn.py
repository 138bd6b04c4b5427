"""uvicorn ``--workers 2`` and gunicorn with uvicorn's worker class, ``hoptel.setup()`` in the app module.

Both workers are configured with the same fixed ``HOPTEL_METRICS_ADDR``; neither fails over the port, and the one
address serves the merged state of both (found automatically: no ``HOPTEL_METRICS_DIR``).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support.ports import free_port
from workers_scenario import (
    Traffic,
    check_exemplar_of_non_serving_worker,
    kill_serving_and_check,
    kill_worker_and_check,
    wait_live,
)
from workers_support import WAIT_S, Server, wait_for

from hoptel.worker_state import read_state

pytestmark = pytest.mark.slow

HISTOGRAM = "http_server_request_duration_seconds"
COUNTER = f"{HISTOGRAM}_count"


def _sender(port: int) -> Callable[[str], tuple[int, str]]:
    def send(traceparent: str) -> tuple[int, str]:
        response = httpx.get(f"http://127.0.0.1:{port}/", headers={"traceparent": traceparent}, timeout=10.0)
        response.raise_for_status()
        pid, trace_id = response.text.split()
        assert trace_id == traceparent.split("-")[1]
        return int(pid), trace_id

    return send


def _uvicorn(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "uvicorn", "workers_apps:asgi_app"),
        *("--workers", "2", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
    ]


def _gunicorn_uvicorn(port: int) -> list[str]:
    return [
        *(sys.executable, "-m", "gunicorn", "workers_apps:asgi_app"),
        *("-w", "2", "-k", "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{port}", "--log-level", "warning"),
    ]


@pytest.mark.parametrize("command", [_uvicorn, _gunicorn_uvicorn], ids=["uvicorn", "gunicorn-uvicorn-worker"])
def test_two_asgi_workers_serve_exact_merged_counts_through_worker_deaths(
    command: Callable[[int], list[str]], start_server: Callable[..., Server], worker_env: dict[str, str]
) -> None:
    """Two ASGI workers, one metrics address: exact merged counts, exemplars of both, no backwards step on SIGKILL.

    The killed non-serving worker is replaced by the server and the new one joins; the killed serving worker's
    address is served again by the other worker within a bounded wait, with every count kept.
    """
    port = free_port()
    server = start_server(command(port), worker_env, port)
    wait_live(server, 2)
    traffic = Traffic(server, _sender(port))
    traffic.many(40)
    server.wait_total(COUNTER, traffic.sent)
    assert len(traffic.pids) >= 1
    check_exemplar_of_non_serving_worker(server, traffic, HISTOGRAM)

    serving = server.serving_pid()
    other = traffic.last[0]
    assert other != serving
    kill_worker_and_check(server, traffic, COUNTER, other, replaced=True)
    wait_live(server, 2)

    kill_serving_and_check(server, traffic, COUNTER)
    wait_live(server, 2)
    final = server.scrape()
    assert final.total(COUNTER) == traffic.sent
    assert final.total("hoptel_worker_processes", state="exited") == 2
    assert final.total("hoptel_worker_state_errors_total") == 0


def test_sigterm_leaves_every_workers_final_counts_in_the_group_directory(
    start_server: Callable[..., Server], worker_env: dict[str, str], tmp_path: Path
) -> None:
    """Stopped with SIGTERM, each uvicorn worker writes its final state on the way out, so no count is lost.

    Publishing every minute only, nothing but the shutdown path can have written the requests' counts.
    """
    directory = tmp_path / "state"
    port = free_port()
    env = {**worker_env, "HOPTEL_METRICS_DIR": str(directory), "HOPTEL_METRICS_PUBLISH_INTERVAL": "60000"}
    server = start_server(_uvicorn(port), env, port)
    wait_for(lambda: True if len(list(directory.glob("member-*.json"))) == 2 else None, "two members")
    server.wait_accepting()
    traffic = Traffic(server, _sender(port))
    traffic.many(30)
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(WAIT_S)

    def written() -> float:
        total = 0.0
        for path in [*directory.glob("member-*.json"), *directory.glob("exited.json")]:
            for family in read_state(path).families:
                total += sum(s.value for s in family.samples if s.name == COUNTER)
        return total

    assert written() == traffic.sent, server.output()
