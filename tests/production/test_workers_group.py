"""A worker group in one test process: damaged files, unusable directories, strangers on the port, fork, clearing.

Each test joins with an explicit ``HOPTEL_METRICS_DIR`` under its temporary directory (except where the automatic
directory is the point) and a free fixed port, and publishes every 50 ms.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from support.ports import busy_port, free_port
from workers_support import listening_pids, scrape, wait_for

import hoptel
from hoptel.endpoint import MetricsEndpoint
from hoptel.metrics import Counter, CounterChild
from hoptel.worker_dir import WorkerDirectory, process_start
from hoptel.worker_group import WorkerGroup
from hoptel.worker_state import encode, snapshot

# Python 3.12+ warns when forking a process that runs threads; forking after setup() is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")

CHILD_WAIT_S = 60.0


@pytest.fixture
def made() -> Iterator[list[hoptel.Telemetry]]:
    """Telemetry objects made by a test; all shut down at teardown."""
    telemetries: list[hoptel.Telemetry] = []
    yield telemetries
    for telemetry in reversed(telemetries):
        telemetry.shutdown(timeout=2.0)


def _setup(made: list[hoptel.Telemetry], port: int, directory: Path | str | None, **settings: Any) -> hoptel.Telemetry:
    options: dict[str, Any] = {
        "traces_exporter": "none",
        "log": "warning",
        "metrics_addr": f"127.0.0.1:{port}",
        "metrics_publish_interval": 50,
    }
    if directory is not None:
        options["metrics_dir"] = str(directory)
    options.update(settings)
    telemetry = hoptel.setup("group-test", environ={}, install_global=False, **options)
    made.append(telemetry)
    return telemetry


def _calls(telemetry: hoptel.Telemetry) -> CounterChild:
    return Counter("demo_calls_total", "Calls.", (), telemetry.registry).labels()


def _member_state(calls: float) -> bytes:
    registry = CollectorRegistry()
    Counter("demo_calls_total", "Calls.", (), registry).labels().inc(calls)
    return encode(snapshot(registry))


def test_a_damaged_state_file_is_skipped_counted_once_and_never_breaks_a_scrape(
    made: list[hoptel.Telemetry], tmp_path: Path
) -> None:
    """A truncated and a garbage member file are skipped and counted once each; the good files are still merged."""
    directory = tmp_path / "state"
    telemetry = _setup(made, free_port(), directory)
    _calls(telemetry).inc(3)
    pid, start = os.getpid(), process_start(os.getpid())  # a live process, so the files are not folded away
    good = _member_state(4)
    (directory / f"member-{pid}-{start}-900001.json").write_bytes(good)
    (directory / f"member-{pid}-{start}-900002.json").write_bytes(good[: len(good) // 2])
    (directory / f"member-{pid}-{start}-900003.json").write_bytes(b"\x80\x04not json at all")
    assert telemetry.metrics_url is not None
    for _ in range(3):
        result = scrape(telemetry.metrics_url)
        assert result.total("demo_calls_total") == 7
        assert result.total("hoptel_worker_state_errors_total") == 2
        assert result.total("hoptel_worker_processes", state="live") == 4
    assert scrape(telemetry.metrics_url, openmetrics=True).total("hoptel_worker_state_errors_total") == 2


def test_a_file_instead_of_a_directory_is_a_value_error_naming_the_variable(
    made: list[hoptel.Telemetry], tmp_path: Path
) -> None:
    """HOPTEL_METRICS_DIR naming a file is a ValueError at setup() that names the variable and the value."""
    plain = tmp_path / "plain"
    plain.write_text("not a directory")
    with pytest.raises(ValueError, match=r"^HOPTEL_METRICS_DIR='.*plain': not a directory"):
        _setup(made, free_port(), plain)


def test_a_directory_that_cannot_be_created_is_a_value_error(made: list[hoptel.Telemetry], tmp_path: Path) -> None:
    """A directory below a regular file cannot be created: a ValueError naming HOPTEL_METRICS_DIR."""
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(ValueError, match=r"^HOPTEL_METRICS_DIR='.*plain/state': cannot create"):
        _setup(made, free_port(), plain / "state")


def test_the_variable_is_read_from_the_environment(tmp_path: Path) -> None:
    """HOPTEL_METRICS_DIR and HOPTEL_METRICS_PUBLISH_INTERVAL come from the environment; bad values name them."""
    plain = tmp_path / "plain"
    plain.write_text("")
    environ = {"HOPTEL_METRICS_ADDR": f"127.0.0.1:{free_port()}", "OTEL_TRACES_EXPORTER": "none"}
    with pytest.raises(ValueError, match=r"^HOPTEL_METRICS_DIR="):
        hoptel.setup("group-test", environ={**environ, "HOPTEL_METRICS_DIR": str(plain)}, install_global=False)
    with pytest.raises(ValueError, match=r"^HOPTEL_METRICS_PUBLISH_INTERVAL='0': expected a finite number >= 10"):
        hoptel.setup("group-test", environ={**environ, "HOPTEL_METRICS_PUBLISH_INTERVAL": "0"}, install_global=False)


@pytest.mark.parametrize("directory", ["explicit", None], ids=["explicit-dir", "automatic-dir"])
def test_a_port_held_outside_the_group_still_fails_setup(
    made: list[hoptel.Telemetry], tmp_path: Path, directory: str | None
) -> None:
    """A socket that is no member of the group holds the port: setup() fails with the usual ValueError."""
    with busy_port() as port, pytest.raises(ValueError, match="address already in use") as caught:
        _setup(made, port, None if directory is None else tmp_path / directory)
    assert str(caught.value) == f"HOPTEL_METRICS_ADDR='127.0.0.1:{port}': address already in use"
    if directory is not None:
        assert not list((tmp_path / directory).glob("member-*"))  # the failed member left no state behind


def test_port_zero_and_off_make_no_group(made: list[hoptel.Telemetry], tmp_path: Path) -> None:
    """Port 0, and HOPTEL_METRICS_DIR=off, serve one process's registry as before; the second bind fails."""
    ephemeral = _setup(made, 0, tmp_path / "zero")
    assert isinstance(ephemeral._endpoint, MetricsEndpoint)
    assert not (tmp_path / "zero").exists()
    port = free_port()
    alone = _setup(made, port, "off")
    assert isinstance(alone._endpoint, MetricsEndpoint)
    with pytest.raises(ValueError, match="address already in use"):
        _setup(made, port, "off")


def test_state_of_an_earlier_run_is_cleared_on_join(made: list[hoptel.Telemetry], tmp_path: Path) -> None:
    """A directory whose members are all gone (files of a dead process, a folded exited state) is cleared first."""
    directory = tmp_path / "state"
    first = _setup(made, free_port(), directory)
    _calls(first).inc(10)
    first.shutdown()
    assert sorted(p.name for p in directory.iterdir()) == [".lock"]  # the last member out cleared the state
    # What a run killed with SIGKILL leaves: a member file of a process that no longer runs, a folded state.
    (directory / "member-999999999-1-1.json").write_bytes(_member_state(50))
    (directory / "exited.json").write_bytes(_member_state(7))
    second = _setup(made, free_port(), directory)
    _calls(second).inc(2)
    assert second.metrics_url is not None
    result = scrape(second.metrics_url)
    assert result.total("demo_calls_total") == 2
    assert result.total("hoptel_worker_processes", state="exited") == 0


def test_the_last_member_to_leave_removes_its_automatic_directory(made: list[hoptel.Telemetry]) -> None:
    """shutdown() of the only member removes the automatic directory: nothing is left in the temporary directory."""
    telemetry = _setup(made, free_port(), None)
    assert isinstance(telemetry._endpoint, WorkerGroup)
    path = telemetry._endpoint.directory.path
    assert path.is_dir()
    telemetry.shutdown()
    assert not path.exists()


def test_stale_automatic_directories_are_swept(made: list[hoptel.Telemetry]) -> None:
    """An automatic group directory without live members is removed when another joins (of this pid namespace only)."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead_pid = int(gone.stdout)
    root = Path(tempfile.gettempdir()) / f"hoptel-metrics-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    namespace = os.stat("/proc/self/ns/pid").st_ino
    stale = root / f"{namespace}-{dead_pid}-12345-0123456789abcdef"
    elsewhere = root / f"{namespace + 1}-{dead_pid}-12345-0123456789abcdef"  # another pid namespace: unknowable
    elsewhere.mkdir()
    stale.mkdir()
    (stale / f"member-{dead_pid}-12345-1.json").write_bytes(_member_state(1))
    telemetry = _setup(made, free_port(), None)
    assert isinstance(telemetry._endpoint, WorkerGroup)
    assert telemetry._endpoint.directory.path.parent == root
    assert not stale.exists()
    assert elsewhere.exists()
    elsewhere.rmdir()


def _forked(calls: CounterChild, recorded: EventType) -> None:
    """In the forked child: three more calls, then wait to be killed."""
    calls.inc(3)
    recorded.set()
    time.sleep(CHILD_WAIT_S)
    os._exit(3)


def test_a_process_forked_after_setup_starts_from_zero_and_its_counts_outlive_it(
    made: list[hoptel.Telemetry], tmp_path: Path
) -> None:
    """A child forked after setup() counts only its own calls, does not hold the port, and SIGKILL keeps its counts.

    Its member file is folded into the exited state by the serving parent: one file fewer, nothing lost.
    """
    directory = tmp_path / "state"
    port = free_port()
    telemetry = _setup(made, port, directory)
    calls = _calls(telemetry)
    calls.inc(5)
    context = multiprocessing.get_context("fork")
    recorded = context.Event()
    child = context.Process(target=_forked, args=(calls, recorded))
    child.start()
    try:
        assert recorded.wait(CHILD_WAIT_S)
        url = telemetry.metrics_url
        assert url is not None
        wait_for(lambda: True if scrape(url).total("demo_calls_total") == 8 else None, "5 + 3 calls")
        assert listening_pids(port) == {os.getpid()}
        assert len(list(directory.glob("member-*.json"))) == 2
    finally:
        if child.pid is not None:
            os.kill(child.pid, signal.SIGKILL)
        child.join(CHILD_WAIT_S)
    wait_for(lambda: True if len(list(directory.glob("member-*.json"))) == 1 else None, "the dead child folded")
    result = scrape(telemetry.metrics_url)
    assert result.total("demo_calls_total") == 8
    assert result.total("hoptel_worker_processes", state="live") == 1
    assert result.total("hoptel_worker_processes", state="exited") == 1
    calls.inc()
    assert scrape(telemetry.metrics_url).total("demo_calls_total") == 9


def test_a_scrape_says_how_old_the_oldest_live_state_is_and_filters_by_name(
    made: list[hoptel.Telemetry], tmp_path: Path
) -> None:
    """hoptel_worker_state_age_seconds is the age of the oldest live member's state; ?name[]= restricts the merge."""
    directory = tmp_path / "state"
    telemetry = _setup(made, free_port(), directory)
    _calls(telemetry).inc(1)
    pid, start = os.getpid(), process_start(os.getpid())
    registry = CollectorRegistry()
    Counter("demo_calls_total", "Calls.", (), registry).labels().inc(2)
    old = snapshot(registry)
    stale = type(old)(old.pid, old.written - 120.0, old.families)
    (directory / f"member-{pid}-{start}-900001.json").write_bytes(encode(stale))
    assert telemetry.metrics_url is not None
    result = scrape(telemetry.metrics_url)
    assert result.total("demo_calls_total") == 3
    assert result.total("hoptel_worker_state_age_seconds") >= 120.0
    only = scrape(f"{telemetry.metrics_url}?name[]=demo_calls_total")
    assert {sample.name for sample in only.samples} == {"demo_calls_total"}
    assert only.total("demo_calls_total") == 3


def test_a_process_forked_while_the_directory_is_locked_does_not_keep_the_lock(tmp_path: Path) -> None:
    """The lock is released when its block ends even if a child forked inside it still holds a copy of its descriptor.

    A fork during a publish or a scrape (gunicorn ``--preload`` replacing a killed worker) used to leave the
    directory locked until that child exited, so every member's next publish and the served scrape waited for it.
    """
    directory = WorkerDirectory(tmp_path / "group", automatic=False)
    with directory.locked(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: forking while other tests' threads live
        child = os.fork()
        if child == 0:  # pragma: no cover - the child holds its copy of the lock's descriptor, then leaves
            time.sleep(5.0)
            os._exit(0)
    try:
        other = WorkerDirectory(tmp_path / "group", automatic=False)  # another member's view of the same directory
        descriptor = other._lock(blocking=False)
        assert descriptor is not None, "the directory stayed locked by the forked child"
        os.close(descriptor)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
