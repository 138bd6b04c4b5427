"""The worker-state directory of a group: where it is, who is in it, and what exited members left behind.

**Where.** ``HOPTEL_METRICS_DIR`` names the directory. Unset (or ``auto``), it is found automatically: under the
temporary directory, ``hoptel-metrics-<uid>/<ns>-<ppid>-<start>-<key>``, where ``<ppid>`` and ``<start>`` are the
parent process's pid and its start time (from ``/proc``, so a recycled pid is another group), ``<ns>`` is the pid
namespace they belong to, and ``<key>`` hashes the service name and the metrics address. The worker processes of
uvicorn ``--workers``, gunicorn and ``multiprocessing`` share a parent, so they find each other without
configuration; two services (or two addresses) started by one shell do not. A process forked after ``setup()``
stays in its parent's group.

**Who.** Every member writes ``member-<pid>-<start>-<n>.json`` (its :mod:`hoptel.worker_state`); a member is live
while a process with that pid *and* start time runs. ``serving.json`` names the member that holds the metrics
address. ``exited.json`` holds the merged state of every member that exited (folded by the serving member: the
member's file is merged into it and removed, so the file count stays bounded and counters never go backwards).

**Earlier runs.** Joining a directory with no live member clears it first, explicit or automatic; automatic
directories of other groups (of this pid namespace) with no live member are removed. The last member to leave
(``shutdown()``) removes the group's state, and an automatic directory with it.

Every change to the directory's membership happens under an exclusive ``flock`` on its ``.lock`` file, opened anew
each time (an open lock file inherited across ``fork()`` would share its lock with the parent).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DIR_VARIABLE", "Member", "WorkerDirectory", "process_start"]

DIR_VARIABLE = "HOPTEL_METRICS_DIR"

_MEMBER = re.compile(r"^member-(\d+)-(\d+)-(\d+)\.json$")
_GROUP = re.compile(r"^(\d+)-(\d+)-(\d+)-[0-9a-f]{16}$")
SERVING = "serving.json"
EXITED = "exited.json"
_LOCK = ".lock"


def _stat(pid: int) -> tuple[bytes, int] | None:
    """A process's state letter and start time (clock ticks since boot) from ``/proc``, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            data = stream.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    except (IndexError, ValueError):
        return None


def process_start(pid: int) -> int:
    """The start time of process ``pid`` in clock ticks since boot, from ``/proc``; 0 where that cannot be read."""
    found = _stat(pid)
    return 0 if found is None else found[1]


def _running(pid: int, start: int) -> bool:
    """Whether ``pid`` runs (not a zombie) and started at ``start``: a recycled pid is another process.

    Without ``/proc`` (start 0) a signal-0 probe decides.
    """
    if pid <= 0:
        return False
    found = _stat(pid)
    if found is not None:
        state, actual = found
        return state not in (b"Z", b"X") and (start == 0 or actual == start)
    if os.path.isdir("/proc/self"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user
    return True


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a group: its process (pid and start time) and its join number within that process."""

    pid: int
    start: int
    number: int

    @property
    def file_name(self) -> str:
        """The name of its state file."""
        return f"member-{self.pid}-{self.start}-{self.number}.json"

    @classmethod
    def parse(cls, file_name: str) -> Member | None:
        """The member a state file belongs to, or None for any other file."""
        match = _MEMBER.match(file_name)
        return None if match is None else cls(int(match[1]), int(match[2]), int(match[3]))

    def alive(self) -> bool:
        """Whether its process still runs."""
        return _running(self.pid, self.start)


class WorkerDirectory:
    """A group's directory (see the module docstring). Create it with :meth:`resolve`."""

    def __init__(self, path: Path, automatic: bool) -> None:
        self.path = path
        self.automatic = automatic

    @classmethod
    def resolve(cls, setting: str | None, service_name: str, host: str, port: int) -> WorkerDirectory:
        """The directory named by ``HOPTEL_METRICS_DIR`` (``setting``), or the automatic one; created and checked.

        Raises:
            ValueError: the directory cannot be created or written, or is not a directory; the message names
                ``HOPTEL_METRICS_DIR``.
        """
        if setting is not None:
            path = Path(setting).expanduser().absolute()
            _usable(path, setting, explicit=True)
            return cls(path, automatic=False)
        root = Path(tempfile.gettempdir()) / f"hoptel-metrics-{os.getuid()}"
        _usable(root, str(root), explicit=False, private=True)
        parent = os.getppid()
        key = hashlib.sha256(f"{service_name}\0{host}\0{port}".encode()).hexdigest()[:16]
        path = root / f"{_pid_namespace()}-{parent}-{process_start(parent)}-{key}"
        _usable(path, str(path), explicit=False)
        return cls(path, automatic=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's exclusive lock for the block (making the directory again if it was removed)."""
        descriptor = self._lock(blocking=True)
        if descriptor is None:  # pragma: no cover - a blocking flock returns with the lock held
            raise RuntimeError(f"could not lock {self.path}")
        try:
            yield
        finally:
            _unlock(descriptor)

    def _lock(self, *, blocking: bool) -> int | None:
        """Lock ``.lock``; the descriptor, or None when ``blocking`` is False and another process holds it.

        The directory may be removed while a process waits for its lock (the last member leaving, a sweep): the lock
        then belongs to a file no longer in the directory, so it is taken again on the file that is there now.
        """
        lock_path = self.path / _LOCK
        while True:
            try:
                descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:
                self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                return None
            try:
                current = os.stat(lock_path).st_ino == os.fstat(descriptor).st_ino
            except FileNotFoundError:
                current = False
            if current:
                return descriptor
            _unlock(descriptor)

    def members(self) -> list[Member]:
        """Every member with a state file, live or not."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return []
        return [member for member in map(Member.parse, sorted(names)) if member is not None]

    def file(self, name: str) -> Path:
        """A file of the directory."""
        return self.path / name

    def serving(self) -> Member | None:
        """The member ``serving.json`` names (it may have died since), or None."""
        try:
            return Member.parse(self.file(SERVING).read_text().strip())
        except (OSError, UnicodeDecodeError):
            return None

    def set_serving(self, member: Member | None) -> None:
        """Record which member serves the address (None: nobody). Call with the lock held."""
        if member is None:
            with contextlib.suppress(FileNotFoundError):
                self.file(SERVING).unlink()
            return
        temporary = self.file(f".{SERVING}.{os.getpid()}.tmp")
        temporary.write_text(member.file_name)
        os.replace(temporary, self.file(SERVING))

    def clear_if_abandoned(self, leaving: Member | None = None) -> bool:
        """Remove every state file when no member is live (state of an earlier run). Call with the lock held.

        ``leaving``: a member of this process that is leaving, not counted as live.
        """
        if any(member.alive() for member in self.members() if member != leaving):
            return False
        for name in os.listdir(self.path):
            if name != _LOCK:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    (self.path / name).unlink()
        return True

    def remove_if_abandoned(self, leaving: Member) -> None:
        """The last live member leaves: remove the state (an automatic directory entirely). Call with the lock held."""
        if not self.clear_if_abandoned(leaving) or not self.automatic:
            return
        with contextlib.suppress(OSError):
            (self.path / _LOCK).unlink()  # a process waiting for this lock notices and takes the new one
            self.path.rmdir()

    def sweep_other_groups(self) -> int:
        """Remove the automatic group directories beside this one that have no live member (an earlier run's).

        A directory whose lock is held is left alone: a process is joining it or leaving it.
        """
        if not self.automatic:
            return 0
        removed = 0
        for entry in self.path.parent.iterdir():
            match = _GROUP.match(entry.name)
            if entry == self.path or match is None or int(match[1]) != _pid_namespace():
                continue  # pids of another pid namespace (a container sharing /tmp) cannot be checked from here
            other = WorkerDirectory(entry, automatic=True)
            try:
                descriptor = other._lock(blocking=False)
            except OSError:
                continue
            if descriptor is None:
                continue
            try:
                if not any(member.alive() for member in other.members()):
                    shutil.rmtree(entry, ignore_errors=True)
                    removed += 1
            finally:
                _unlock(descriptor)
        return removed


def _pid_namespace() -> int:
    """This process's pid namespace (an inode number), 0 where that cannot be read."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _usable(path: Path, shown: str, *, explicit: bool, private: bool = False) -> None:
    """Create ``path`` (mode 0700) if needed and check that it is a directory this process can write.

    ``private``: it must also belong to this user and not be a symbolic link (a shared temporary directory).
    """
    where = f"{DIR_VARIABLE}={shown!r}" if explicit else f"{DIR_VARIABLE} (unset; the automatic directory {shown!r})"
    hint = "" if explicit else f"; set {DIR_VARIABLE} to a writable directory, or to 'off'"
    try:
        path.mkdir(mode=0o700, parents=explicit, exist_ok=True)
        info = path.lstat()
    except FileExistsError:  # something that is not a directory
        raise ValueError(f"{where}: not a directory{hint}") from None
    except OSError as exc:
        raise ValueError(f"{where}: cannot create the worker-state directory ({exc.strerror or exc}){hint}") from None
    if stat.S_ISLNK(info.st_mode) and private:
        raise ValueError(f"{where}: is a symbolic link; refusing to use it{hint}")
    if not path.is_dir():
        raise ValueError(f"{where}: not a directory{hint}")
    if private and info.st_uid != os.getuid():
        raise ValueError(f"{where}: belongs to another user{hint}")
    probe = path / f".probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"{where}: cannot write in the worker-state directory ({exc.strerror or exc}){hint}") from None


def _unlock(descriptor: int) -> None:
    """Release a ``flock`` and close its descriptor.

    Closing alone is not enough: a process forked while the lock was held (gunicorn ``--preload`` replacing a worker,
    a multiprocessing server) holds a copy of the descriptor, and a ``flock`` lasts until every descriptor of the
    open file is closed, so every member's next lock (publishing, scraping) would wait for that child to exit.
    """
    try:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
