"""gunicorn sync and gthread workers (WSGI), one metrics address; with ``--preload`` setup() runs in the master.

The WSGI handler makes an instrumented httpx call, so each request records ``http_client_request_duration_seconds``
in the worker that served it. With ``--preload`` the master imported the app (and called ``hoptel.setup()``)
before forking its workers: the master serves the address, and each forked worker starts its counts from zero.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import httpx
import pytest
from support.ports import free_port
from workers_scenario import Traffic, check_exemplar_of_non_serving_worker, kill_worker_and_check, wait_live
from workers_support import Server

pytestmark = pytest.mark.slow

HISTOGRAM = "http_client_request_duration_seconds"
COUNTER = f"{HISTOGRAM}_count"


def _sender(port: int) -> Callable[[str], tuple[int, str]]:
    def send(traceparent: str) -> tuple[int, str]:
        response = httpx.get(f"http://127.0.0.1:{port}/", timeout=10.0)
        response.raise_for_status()
        pid, trace_id = response.text.split()
        return int(pid), trace_id

    return send


@pytest.mark.parametrize(
    ("worker_args", "preload"),
    [(("-k", "gthread", "--threads", "2", "--preload"), True), (("-k", "sync"), False)],
    ids=["gthread-preload", "sync"],
)
def test_wsgi_workers_serve_exact_merged_counts_through_a_worker_death(
    worker_args: tuple[str, ...],
    preload: bool,
    start_server: Callable[..., Server],
    worker_env: dict[str, str],
    http_target: str,
) -> None:
    """Two WSGI workers: exact merged client-call counts with exemplars; a SIGKILLed worker is replaced, none lost.

    With ``--preload`` the master (which ran ``setup()``) serves the address and counts nothing itself: the
    counts are exactly the requests the forked workers served.
    """
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", "-w", "2", *worker_args, "-b", f"127.0.0.1:{port}"]
    server = start_server(
        [*args, "--log-level", "warning", "workers_apps:wsgi_app"], {**worker_env, "WORKERS_TARGET_URL": http_target}
    )
    wait_live(server, 3 if preload else 2)
    traffic = Traffic(server, _sender(port))
    traffic.many(30)
    server.wait_total(COUNTER, traffic.sent)
    serving = server.serving_pid()
    if preload:
        assert serving == server.process.pid  # the master, which called setup() before the fork
        assert serving not in traffic.pids
    check_exemplar_of_non_serving_worker(server, traffic, HISTOGRAM)

    victim = traffic.last[0]
    assert victim != serving
    kill_worker_and_check(server, traffic, COUNTER, victim, replaced=True)
    wait_live(server, 3 if preload else 2)
    assert server.scrape().total(COUNTER) == traffic.sent
