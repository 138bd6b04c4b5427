"""Several worker processes, one metrics address: each publishes its state, whichever holds the port serves them all.

Worker processes of one service instance (uvicorn ``--workers``, gunicorn ``-w``, a ``multiprocessing`` gRPC
server) are all configured with the same ``HOPTEL_METRICS_ADDR``. Only one can bind it. With a fixed port (not 0)
``setup()`` makes each process a member of a *worker group* instead (``hoptel.worker_dir`` says how the members
find their directory, and how state of an earlier run is cleared):

- **Publishing.** A daemon thread writes the process's registry state (``hoptel.worker_state``) to its member
  file every ``HOPTEL_METRICS_PUBLISH_INTERVAL`` milliseconds (default 1000), and once more at ``shutdown()``.
  Nothing is shared on the hot path: an observation stays a bisect and two increments in process memory. A
  serving member without live peers skips it: a lone process with a fixed address writes only when scraped.
- **Serving.** The member that binds the address serves, at each scrape, its own live registry merged
  (``hoptel.worker_merge``) with every other member's latest file and with ``exited.json``, the folded state of the
  members that exited. Before answering, it writes its own state too, so a count that was served is on disk and
  cannot go backwards when this process dies. The others try to bind at each tick while no live member serves, so
  the role moves within about one interval when the serving process dies.
- **Strangers.** A bind that fails while no live member serves means the port belongs to something outside the
  group: ``setup()`` fails with the usual ``ValueError`` naming ``HOPTEL_METRICS_ADDR``.
- **Exits.** The serving member folds the files of members whose process is gone into ``exited.json``; a member
  that shuts down folds its own final state (the last one removes the group's state). Counters therefore never go
  backwards when a worker dies or is replaced; what a worker killed with SIGKILL counted after its last publish is
  lost.
- **Fork.** A process forked after ``setup()`` (gunicorn ``--preload``, ``multiprocessing`` with ``fork``) is a
  new member of its parent's group: its copy of every hoptel series starts again from zero (the parent counts
  what happened before the fork), it closes its copy of the listening socket and starts its own publisher.

A scrape also says how fresh it is: ``hoptel_worker_processes{state="live"|"exited"}``,
``hoptel_worker_state_age_seconds`` (the age of the oldest state a live member published) and
``hoptel_worker_state_errors_total`` (state files skipped because they were damaged; a damaged file never fails a
scrape). Gauges are summed over the members, like counters (see ``hoptel.worker_merge``).

Port 0 and ``HOPTEL_METRICS_DIR=off`` make no group: one process serves its own registry, as before.
``?name[]=`` filters the merged samples by name, as for a single process. Limit: collectors other than hoptel's
families that an application registers into ``Telemetry.registry`` are merged too, but are not zeroed in a
forked child.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from hoptel.background import on_fork, start_daemon
from hoptel.endpoint import AddressInUseError, MetricsEndpoint, TLSFiles
from hoptel.metrics import Counter, families_of
from hoptel.worker_dir import EXITED, Member, WorkerDirectory, process_start
from hoptel.worker_merge import merge_states, render
from hoptel.worker_state import StateError, StateReader, WorkerState, encode, snapshot, write_atomically

__all__ = ["PUBLISH_VARIABLE", "WorkerGroup"]

PUBLISH_VARIABLE = "HOPTEL_METRICS_PUBLISH_INTERVAL"

_log = logging.getLogger("hoptel.workers")
_numbers = itertools.count(1)
_JOIN_TIMEOUT_S = 5.0


def _new_member() -> Member:
    pid = os.getpid()
    return Member(pid, process_start(pid), next(_numbers))


class _Served:
    """The collector the serving member's endpoint serves: the group's merged state (``names``: only samples named so).

    ``restricted_registry`` gives ``?name[]=`` the meaning it has for a ``CollectorRegistry``: the samples whose
    name is listed.
    """

    def __init__(self, group: WorkerGroup, names: frozenset[str] | None = None) -> None:
        self._group = weakref.ref(group)
        self._names = names

    def restricted_registry(self, names: Iterable[str]) -> _Served:
        group = self._group()
        return _Served(group, frozenset(names)) if group is not None else self

    def collect(self) -> Iterable[Metric]:
        group = self._group()
        metrics = [] if group is None else group.collect_merged()
        if self._names is None:
            return metrics
        restricted = []
        for metric in metrics:
            samples = [sample for sample in metric.samples if sample.name in self._names]
            if samples:
                metric.samples = samples
                restricted.append(metric)
        return restricted


@dataclass(eq=False, repr=False)
class WorkerGroup:
    """This process's membership of a worker group. Create it with :meth:`join`; end it with :meth:`close`.

    Attributes:
        registry: this process's metrics, published to the group.
        directory: the group's directory.
        host: the address the serving member binds, with ``port`` and ``tls``.
        port: the port the serving member binds.
        tls: the serving member's certificate files, or None for plain HTTP.
        interval_s: seconds between publishes of this process's state.
        url: the group's metrics URL (served by whichever member holds the address).
    """

    registry: CollectorRegistry
    directory: WorkerDirectory
    host: str
    port: int
    tls: TLSFiles | None
    interval_s: float

    def __post_init__(self) -> None:
        self._member = _new_member()
        self._endpoint: MetricsEndpoint | None = None
        self._closed = False
        self._warned_bind = False
        self._warned_publish = False
        self._has_peers = True  # until the first fold says otherwise
        self._errors = Counter(
            "hoptel_worker_state_errors_total",
            "Worker state files skipped because they could not be read or parsed.",
            (),
            self.registry,
        ).labels()
        shown = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self.url = f"{'http' if self.tls is None else 'https'}://{shown}/metrics"
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        """The per-process parts: locks, caches and the publisher's stop flag (new ones after a fork)."""
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()  # a later snapshot is always written after an earlier one
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader = StateReader(self._skip_damaged)

    @classmethod
    def join(
        cls,
        registry: CollectorRegistry,
        directory: WorkerDirectory,
        *,
        host: str,
        port: int,
        tls: TLSFiles | None = None,
        interval_s: float = 1.0,
    ) -> WorkerGroup:
        """Join the group in ``directory``: publish, and serve the address if no live member does.

        Raises:
            ValueError: the address is held by a process outside the group, or cannot be bound (the message
                names ``HOPTEL_METRICS_ADDR``); a TLS file is unusable.
        """
        group = cls(registry, directory, host, port, tls, interval_s)
        with directory.locked():
            directory.sweep_other_groups()
            directory.clear_if_abandoned()
            group._publish()
            try:
                group._take_address(at_join=True)
            except BaseException:
                group._remove_own_file()
                raise
        group._start_publisher()
        on_fork(group, after_in_child=WorkerGroup._after_fork_in_child)
        return group

    @property
    def serving(self) -> bool:
        """Whether this process holds the address now."""
        return self._endpoint is not None

    @property
    def member(self) -> Member:
        """This process's member identity."""
        return self._member

    def _take_address(self, *, at_join: bool) -> None:
        """Bind the address unless a live member serves it. Call with the directory lock held."""
        server = self.directory.serving()
        if server is not None and server != self._member and server.alive():
            return
        try:
            self._endpoint = MetricsEndpoint.start(_Served(self), host=self.host, port=self.port, tls=self.tls)
        except ValueError as exc:
            if at_join:
                raise
            if not self._warned_bind:  # once until it works: the retry runs every tick
                self._warned_bind = True
                held = "held by a process outside the worker group" if isinstance(exc, AddressInUseError) else exc
                _log.warning("cannot serve the worker group's metrics at %s (%s); retrying", self.url, held)
            return
        self._warned_bind = False
        self.directory.set_serving(self._member)

    def _publish(self) -> WorkerState:
        """Write this process's state now (the publisher's tick and every scrape served here both do)."""
        with self._publish_lock:
            state = snapshot(self.registry)
            path = self.directory.file(self._member.file_name)
            try:
                write_atomically(path, encode(state))
            except FileNotFoundError:  # the directory was removed under a live member: make it again
                self.directory.path.mkdir(mode=0o700, parents=True, exist_ok=True)
                write_atomically(path, encode(state))
        return state

    def publish(self) -> None:
        """Write this process's state now (before a signal ends the process without ``atexit``); never raises."""
        if self._closed:
            return
        try:
            self._publish()
        except OSError:
            _log.warning("could not write this worker's metrics state", exc_info=True)

    def _start_publisher(self) -> None:
        self._thread = start_daemon(self._run, "hoptel-metrics-publish")

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:
                if not self._warned_publish:  # once until it works again
                    self._warned_publish = True
                    _log.warning("publishing this worker's metrics failed; retrying", exc_info=True)
            else:
                self._warned_publish = False

    def tick(self) -> None:
        """Publish this process's state; fold exited members if serving, else take the address if it is free."""
        with self._lock:
            if self._closed:
                return
            if self._endpoint is None or self._has_peers:
                self._publish()
            with self.directory.locked():
                if self._endpoint is not None:
                    self._has_peers = self._fold_exited()
                else:
                    self._take_address(at_join=False)

    def _read(self, name: str) -> WorkerState | None:
        return self._reader.read(self.directory.file(name))

    def _skip_damaged(self, path: Path, error: StateError) -> None:
        self._errors.inc()
        _log.warning("skipping the worker state file %s: %s", path, error)

    def _fold_exited(self) -> bool:
        """Merge the files of members whose process is gone into ``exited.json``, then remove them. Lock held.

        Returns:
            Whether other members are live.
        """
        others = [m for m in self.directory.members() if m != self._member]
        dead = [m for m in others if not m.alive()]
        if not dead:
            return bool(others)
        exited = self._read(EXITED) or WorkerState(0, time.time(), ())
        present = {m.file_name for m in self.directory.members()}
        folded = [name for name in exited.folded if name in present]
        states = [exited]
        count = exited.exited
        for member in dead:
            if member.file_name in exited.folded:
                continue  # folded before, its file not yet removed
            state = self._read(member.file_name)
            if state is not None:
                states.append(state)
            count += 1
            folded.append(member.file_name)
        merged = WorkerState(0, time.time(), merge_states(states), count, tuple(folded))
        write_atomically(self.directory.file(EXITED), encode(merged))
        for member in dead:
            with contextlib.suppress(FileNotFoundError):
                self.directory.file(member.file_name).unlink()
            self._reader.forget(self.directory.file(member.file_name))
        return len(others) > len(dead)

    def collect_merged(self) -> list[Metric]:
        """The group's metrics: this registry now, every other member's file and the exited members' state."""
        now = time.time()
        with self.directory.locked():
            exited = self._read(EXITED)
            folded = set() if exited is None else set(exited.folded)  # already in exited.json
            others: list[tuple[Member, WorkerState | None]] = [
                (m, self._read(m.file_name))
                for m in self.directory.members()
                if m != self._member and m.file_name not in folded
            ]
            own = self._publish()
        states = [own, *(state for _, state in others if state is not None)]
        if exited is not None:
            states.append(exited)
        live = [state for member, state in others if member.alive()]
        dead = len(others) - len(live)
        ages = [now - state.written for state in live if state is not None]
        metrics = render(merge_states(states))
        workers = GaugeMetricFamily(
            "hoptel_worker_processes", "Worker processes of this metrics address, by state.", labels=("state",)
        )
        workers.add_metric(("live",), float(1 + len(live)))
        workers.add_metric(("exited",), float(dead + (exited.exited if exited is not None else 0)))
        age = GaugeMetricFamily(
            "hoptel_worker_state_age_seconds",
            "Age of the oldest state a live worker published (the serving worker's own is read at the scrape).",
            value=max(ages, default=0.0),
        )
        return [*metrics, workers, age]

    def _remove_own_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.directory.file(self._member.file_name).unlink()

    def close(self) -> None:
        """Stop publishing, stop serving, and fold this process's final state into the group's; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.close()
        try:
            self._fold_own_state()
        except OSError:
            _log.warning("could not keep this worker's final metrics in %s", self.directory.path, exc_info=True)

    def _fold_own_state(self) -> None:
        """Leave the group: fold this process's final state into ``exited.json``; the last live member clears it."""
        with self._lock, self.directory.locked():
            if self.directory.serving() == self._member:
                self.directory.set_serving(None)
            members = self.directory.members()
            if not any(member.alive() for member in members if member != self._member):
                self.directory.remove_if_abandoned(leaving=self._member)
                return
            final = snapshot(self.registry)
            exited = self._read(EXITED) or WorkerState(0, time.time(), ())
            present = {m.file_name for m in members}
            folded = (*(name for name in exited.folded if name in present), self._member.file_name)
            merged = WorkerState(0, time.time(), merge_states([exited, final]), exited.exited + 1, folded)
            # exited.json first, naming this file as folded (a scrape skips it): a crash before the unlink below
            # then neither loses nor double-counts anything.
            write_atomically(self.directory.file(EXITED), encode(merged))
            self._remove_own_file()

    def _after_fork_in_child(self) -> None:
        """In a process forked after ``setup()``: a new member starting from zero, not serving."""
        if self._closed:
            return
        self._reset_process_state()
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.abandon_after_fork()
        self._member = _new_member()
        for family in families_of(self.registry):
            family.reset()
        try:
            self._publish()
        except OSError:
            _log.warning("a forked worker could not publish its metrics; retrying", exc_info=True)
        self._start_publisher()

    def __repr__(self) -> str:
        role = "serving" if self.serving else "publishing"
        return f"<WorkerGroup {self.url} {self.directory.path} {role}>"
