"""The scenario every multi-worker server goes through: traffic, exact merged counts, exemplars, SIGKILLs.

A server under test answers each request with ``"<pid> <trace_id>"`` (see ``workers_apps``), so the test knows
which worker served it and which trace its exemplar should carry.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from workers_support import Scrape, Server, alive, wait_for

Send = Callable[[str], tuple[int, str]]
"""``send(traceparent) -> (pid, trace_id)``: one request on a new connection."""

MAX_TRIES = 400  # requests sent at most to reach a worker other than the serving one


@dataclass
class Traffic:
    """Requests sent to one server: how many, which pids served them, and the trace id of the last one."""

    server: Server
    send: Send
    sent: int = 0
    pids: set[int] = field(default_factory=set)
    last: tuple[int, str] = (0, "")

    def one(self) -> tuple[int, str]:
        """Send one request with a sampled traceparent; check the answer carries its trace id."""
        trace_id = uuid.uuid4().hex
        try:
            pid, answered = self.send(f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01")
        except Exception as error:  # a refused or failed request: say what the server printed
            raise AssertionError(f"request {self.sent + 1} failed: {error!r}\n{self.server.output()}") from error
        self.sent += 1
        self.pids.add(pid)
        self.server.seen_pids.add(pid)
        self.last = (pid, answered)
        return pid, answered

    def many(self, count: int) -> None:
        """Send ``count`` requests one after another."""
        for _ in range(count):
            self.one()

    def until_served_by_other_than(self, pid: int) -> tuple[int, str]:
        """Send requests until one is served by a process other than ``pid``; that request's (pid, trace id)."""
        for _ in range(MAX_TRIES):
            served, trace_id = self.one()
            if served != pid:
                return served, trace_id
        raise AssertionError(f"{MAX_TRIES} requests were all served by {pid}\n{self.server.output()}")


class Monotonic:
    """Scrapes a counter and checks it never goes down from one scrape to the next."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.highest = 0.0

    def read(self) -> Scrape:
        result = self.server.scrape()
        value = result.total(self.name)
        assert value >= self.highest, f"{self.name} went backwards: {self.highest} -> {value}\n{self.server.output()}"
        self.highest = value
        return result


def wait_live(server: Server, count: int) -> Scrape:
    """Scrape until the group reports ``count`` live worker processes, then until the server's port accepts.

    A worker joins the group when it imports the app, which under ``uvicorn --workers`` is before any worker
    listens on the socket the supervisor bound: a request sent in between is refused.
    """

    def read() -> Scrape | None:
        result = server.scrape()
        return result if result.total("hoptel_worker_processes", state="live") == count else None

    scrape = wait_for(read, f"{count} live workers at {server.metrics_url}", details=server.output)
    if server.port:
        server.wait_accepting()
    return scrape


def check_exemplar_of_non_serving_worker(server: Server, traffic: Traffic, histogram: str) -> None:
    """The latest request, served by a worker that does not hold the metrics address, is an exemplar of the scrape."""
    serving = server.serving_pid()
    pid, trace_id = traffic.until_served_by_other_than(serving)
    assert pid != serving
    server.wait_total(f"{histogram}_count", traffic.sent)
    openmetrics = server.scrape(openmetrics=True)
    assert openmetrics.total(f"{histogram}_count") == traffic.sent
    assert trace_id in openmetrics.exemplar_trace_ids(f"{histogram}_bucket"), openmetrics.body[-3000:]
    assert openmetrics.body.rstrip().endswith("# EOF")
    text = server.scrape()
    assert text.total(f"{histogram}_count") == traffic.sent  # the text format too


def kill_worker_and_check(server: Server, traffic: Traffic, counter: str, pid: int, replaced: bool) -> None:
    """SIGKILL ``pid`` after its counts were served: nothing goes backwards; with more traffic, exact again."""
    watch = Monotonic(server, counter)
    assert watch.read().total(counter) == traffic.sent
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: True if not alive(pid) else None, f"worker {pid} to die", details=server.output)
    for _ in range(5):
        watch.read()
    assert watch.highest == traffic.sent
    if replaced:  # the server starts a new worker; it joins the group
        wait_for(
            lambda: True if watch.read().total("hoptel_worker_processes", state="exited") >= 1 else None,
            "the killed worker counted as exited",
            details=server.output,
        )
    traffic.many(20)
    server.wait_total(counter, traffic.sent)
    watch.read()


def kill_serving_and_check(server: Server, traffic: Traffic, counter: str) -> int:
    """SIGKILL the process serving the address: another serves it within a bounded wait, with every count kept."""
    server.wait_total(counter, traffic.sent)  # served, hence written to the server's own state file
    serving = server.serving_pid()
    os.kill(serving, signal.SIGKILL)
    wait_for(lambda: True if not alive(serving) else None, f"server {serving} to die", details=server.output)

    def taken_over() -> int | None:
        pids = {pid for pid in (server.serving_pid(),) if pid != serving}
        return next(iter(pids)) if pids else None

    new_serving = wait_for(taken_over, "another worker to serve the metrics address", details=server.output)
    assert server.scrape().total(counter) == traffic.sent
    traffic.many(20)
    server.wait_total(counter, traffic.sent)
    return new_serving
