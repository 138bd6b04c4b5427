"""A multi-process gRPC server (forked workers sharing a port with SO_REUSEPORT), one metrics address.

``hoptel.setup()`` runs either in the main process before the fork (it then serves the address and its forked
workers start from zero) or in each worker after the fork (the workers find each other automatically).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import grpc
import pytest
from support.ports import free_port
from workers_grpc_server import METHOD
from workers_scenario import (
    Traffic,
    check_exemplar_of_non_serving_worker,
    kill_serving_and_check,
    kill_worker_and_check,
    wait_live,
)
from workers_support import Server

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")]

HISTOGRAM = "grpc_server_handling_seconds"
COUNTER = f"{HISTOGRAM}_count"


def _sender(port: int) -> Callable[[str], tuple[int, str]]:
    def send(traceparent: str) -> tuple[int, str]:
        # A channel of its own with a local subchannel pool: a new connection, which the kernel may hand to any
        # worker's SO_REUSEPORT socket.
        options = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            call = channel.unary_unary(METHOD)
            answer = call(b"x", metadata=[("traceparent", traceparent)], timeout=10.0, wait_for_ready=True)
        pid, trace_id = answer.decode().split()
        assert trace_id == traceparent.split("-")[1]
        return int(pid), trace_id

    return send


@pytest.mark.parametrize("where", ["parent", "child"], ids=["setup-before-fork", "setup-in-each-worker"])
def test_grpc_workers_serve_exact_merged_counts_through_worker_deaths(
    where: str, start_server: Callable[..., Server], worker_env: dict[str, str]
) -> None:
    """Two forked gRPC workers: exact merged RPC counts with exemplars; SIGKILLed workers never make them go back.

    Set up before the fork, the main process serves and the workers' counts are exactly the RPCs they handled;
    set up in each worker, killing the serving worker moves the address to the other one.
    """
    port = free_port()
    server = start_server([sys.executable, "workers_grpc_server.py", str(port), "2", where], worker_env)
    wait_live(server, 3 if where == "parent" else 2)
    traffic = Traffic(server, _sender(port))
    traffic.many(30)
    server.wait_total(COUNTER, traffic.sent)
    handled = server.scrape().total("grpc_server_handled_total", grpc_code="OK", grpc_method="Unary")
    assert handled == traffic.sent
    serving = server.serving_pid()
    if where == "parent":
        assert serving == server.process.pid
        check_exemplar_of_non_serving_worker(server, traffic, HISTOGRAM)
        kill_worker_and_check(server, traffic, COUNTER, traffic.last[0], replaced=False)
        assert server.scrape().total("hoptel_worker_processes", state="live") == 2
    else:
        check_exemplar_of_non_serving_worker(server, traffic, HISTOGRAM)
        kill_serving_and_check(server, traffic, COUNTER)
        final = server.scrape()
        assert final.total("hoptel_worker_processes", state="live") == 1
        assert final.total("hoptel_worker_processes", state="exited") == 1
    assert server.scrape().total(COUNTER) == traffic.sent
