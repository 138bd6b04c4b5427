"""Whole lines on a shared stdout: the application's writes and the log writer's never cut into each other.

``print("SPAN", a, b)`` is six ``write()`` calls; the log writer thread writing its batch to the same
``sys.stdout`` between two of them gives ``SPAN{...json...}`` and then `` a b``. :class:`LineGuard` stands in for
``sys.stdout`` while the log pipeline runs and passes the application's text to the real stream in whole lines:

- ``write()`` keeps the text after the last newline aside, per thread, and writes everything up to and including
  that newline in one call to the real stream. So a line one thread assembles is written whole, and the lines
  of different threads no longer interleave either.
- ``flush()`` (``print(..., flush=True)``, a progress bar, a prompt) writes the calling thread's partial line
  as it is: the application asked to see it. The real stream then ends mid-line until a newline follows.
- The log writer calls :meth:`LineGuard.write_lines`: under the same lock, so never between the parts of a line.
  If the stream ends mid-line after a ``flush()``, it waits up to ``open_line_wait_s`` for the newline, then
  starts its lines on a new line (the application's line continues after them).
- A partial line longer than ``max_partial`` characters is written as it is, as if flushed.

``sys.stdout.buffer`` is guarded the same way, for byte lines, under the same lock (the two share one open-line
state: they end up in one byte stream). As with Python's own streams, text and bytes written without a
``flush()`` in between may reach the stream in another order. Everything else (``fileno()``, ``isatty()``,
``encoding``, ...) is the real stream's. Writes to ``sys.__stdout__``, to ``sys.stdout.buffer.raw`` or to a
``sys.stdout`` replaced after the guard was put in place bypass it. After :meth:`LineGuard.uninstall` every write
passes straight through, for code that kept a reference (a ``StreamHandler`` made meanwhile).

After ``os.fork()`` the child gets fresh locks; the partial lines of the parent's other threads are dropped
there (the parent writes them).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import IO, Any, AnyStr, BinaryIO, TextIO, cast

from hoptel.background import on_fork
from hoptel.forwarding import Forwarding

__all__ = ["LineGuard"]

_get_ident = threading.get_ident


class LineGuard(Forwarding):
    """A stand-in for a text stream that passes text on in whole lines; see the module docstring.

    Args:
        stream: The real stream (usually ``sys.stdout``).
        max_partial: The longest partial line kept aside, in characters.
        open_line_wait_s: How long :meth:`write_lines` waits for a line left open by ``flush()``.
    """

    _forwarded_to = "stream"  # everything else is the real stream's (fileno, isatty, encoding, buffer, ...)

    def __init__(self, stream: TextIO, *, max_partial: int = 65_536, open_line_wait_s: float = 0.25) -> None:
        self.stream = stream
        self._max_partial = max_partial
        self._open_line_wait_s = open_line_wait_s
        self._partial: dict[int, str] = {}
        self._binary: _BinaryLineGuard | None = None
        self._retired = False
        self._init_locks()
        on_fork(self, after_in_child=LineGuard._after_fork_in_child)

    def _init_locks(self) -> None:
        # Reentrant: a signal handler that prints runs on a thread that may be inside write() already.
        self._lock = threading.RLock()
        self._line_closed = threading.Condition(self._lock)
        self._open_line = False  # the real stream ends mid-line (a flushed partial line)

    def _after_fork_in_child(self) -> None:
        mine = self._partial.get(_get_ident())
        self._partial = {} if mine is None else {_get_ident(): mine}
        if self._binary is not None:
            self._binary._after_fork_in_child()
        self._init_locks()

    @classmethod
    def install(cls, **options: Any) -> LineGuard | None:
        """Put a guard in place of ``sys.stdout`` (the current one is wrapped).

        Args:
            **options: Passed to the constructor.

        Returns:
            The guard, or ``None`` when there is no ``sys.stdout`` or it already is a guard.
        """
        stream = sys.stdout
        if stream is None or isinstance(stream, LineGuard):
            return None
        guard = cls(stream, **options)
        sys.stdout = cast(TextIO, guard)
        return guard

    def uninstall(self) -> None:
        """Write every thread's partial line, put the real stream back as ``sys.stdout`` if the guard still is it.

        A ``sys.stdout`` replaced since (by the application, pytest's capture, ``redirect_stdout``) is left alone.
        """
        with self._lock:
            self._retired = True
            partial, self._partial = self._partial, {}
            try:
                for text in partial.values():
                    self.stream.write(text)
                if self._binary is not None:
                    self._binary._write_all_partials()
            except (OSError, ValueError):  # closed or broken: nothing can be done with the text
                pass
        if sys.stdout is cast(TextIO, self):
            sys.stdout = self.stream

    def write(self, text: str) -> int:
        """Write ``text``: complete lines now, in one call; a trailing partial line when it is completed."""
        if self._retired or not isinstance(text, str):
            if not isinstance(text, str):
                raise TypeError(f"write() argument must be str, not {type(text).__name__}")
            return self.stream.write(text)  # retired: straight through
        # _put() inlined for text: print() makes several calls per line, and every call counts.
        partials = self._partial
        ident = _get_ident()
        cut = text.rfind("\n")
        if cut < 0:  # (a closed stream raises when the line is written, at its newline or a flush())
            partial = partials.get(ident)
            joined = text if partial is None else partial + text
            if len(joined) <= self._max_partial:
                partials[ident] = joined
            else:
                partials.pop(ident, None)
                self._write_open(joined, self.stream.write)
            return len(text)
        size = len(text)
        partial = partials.pop(ident, None) if partials else None
        if cut + 1 < size:
            partials[ident] = text[cut + 1 :]
            text = text[: cut + 1]
        with self._lock:
            self.stream.write(text if partial is None else partial + text)
            if self._open_line:
                self._open_line = False
                self._line_closed.notify_all()
        return size

    def _put(self, partials: dict[int, AnyStr], data: AnyStr, newline: AnyStr, write: Callable[[AnyStr], Any]) -> int:
        """Keep ``data`` after its last newline aside for this thread; write what comes before it with ``write``."""
        cut = data.rfind(newline)
        ident = _get_ident()
        if cut < 0:  # (a closed stream raises when the line is written, at its newline or a flush())
            partial = partials.get(ident)
            joined = data if partial is None else partial + data
            if len(joined) > self._max_partial:
                partials.pop(ident, None)
                self._write_open(joined, write)
            else:
                partials[ident] = joined
            return len(data)
        partial = partials.pop(ident, None) if partials else None
        size = len(data)
        end = cut + 1
        if end < size:
            partials[ident] = data[end:]
            data = data[:end]
        # Every write to the real stream holds the lock: io.TextIOWrapper is not safe for concurrent writes (while
        # one thread's write waits for the buffered writer, another's can be put in the middle of it).
        with self._lock:
            write(data if partial is None else partial + data)
            if self._open_line:
                self._open_line = False
                self._line_closed.notify_all()
        return size

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each string in turn (no newlines are added)."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Write the calling thread's partial line as it is, then flush the real stream."""
        self._flush(self._partial, self.stream)

    def _flush(self, partials: dict[int, AnyStr], stream: IO[AnyStr]) -> None:
        """Write the calling thread's partial line from ``partials`` to ``stream`` as it is, then flush ``stream``."""
        partial = partials.pop(_get_ident(), None) if partials else None
        if partial:
            self._write_open(partial, stream.write)
        with self._lock:
            stream.flush()

    def _write_open(self, data: AnyStr, write: Callable[[AnyStr], Any]) -> None:
        with self._lock:
            write(data)
            self._open_line = True

    @property
    def buffer(self) -> BinaryIO:
        """The real stream's binary buffer, guarded the same way: whole byte lines."""
        buffer = self.stream.buffer
        guard = self._binary
        if guard is None or guard.raw_buffer is not buffer:
            guard = self._binary = _BinaryLineGuard(self, buffer)
        return cast(BinaryIO, guard)

    def write_lines(self, text: str) -> None:
        """Write the log writer's ``text`` (whole lines, ending in a newline) between the application's lines; flush.

        Args:
            text: One or more complete lines.
        """
        with self._lock:
            if self._open_line and not self._retired:
                self._line_closed.wait_for(lambda: not self._open_line, self._open_line_wait_s)
                if self._open_line:
                    text = "\n" + text
                    self._open_line = False
            self.stream.write(text)
            self.stream.flush()  # into the binary buffer now, not after a binary partial line flushed meanwhile

    def close(self) -> None:
        """Write the calling thread's partial line, then close the real stream."""
        partial = self._partial.pop(_get_ident(), None)
        with self._lock:
            if partial:
                self.stream.write(partial)
            self.stream.close()

    def __repr__(self) -> str:
        return f"<hoptel LineGuard over {self.stream!r}>"


class _BinaryLineGuard(Forwarding):
    """``sys.stdout.buffer`` while a :class:`LineGuard` is ``sys.stdout``: whole byte lines, the same lock."""

    _forwarded_to = "raw_buffer"  # everything else is the real buffer's (raw, fileno, closed, ...)

    def __init__(self, guard: LineGuard, buffer: BinaryIO) -> None:
        self.raw_buffer = buffer
        self._guard = guard
        self._partial: dict[int, bytes] = {}

    def _after_fork_in_child(self) -> None:
        mine = self._partial.get(_get_ident())
        self._partial = {} if mine is None else {_get_ident(): mine}

    def _write_all_partials(self) -> None:
        """Called by the guard's ``uninstall()``, with its lock held."""
        partial, self._partial = self._partial, {}
        for data in partial.values():
            self.raw_buffer.write(data)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data``: complete lines now, in one call; a trailing partial line when it is completed."""
        guard = self._guard
        if guard._retired:
            return self.raw_buffer.write(data)
        return guard._put(self._partial, bytes(data), b"\n", self.raw_buffer.write)  # a copy: data may be reused

    def writelines(self, lines: Iterable[bytes]) -> None:
        """Write each bytes object in turn."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Write the calling thread's partial line as it is, then flush the real buffer."""
        self._guard._flush(self._partial, self.raw_buffer)

    def __repr__(self) -> str:
        return f"<hoptel line guard over {self.raw_buffer!r}>"
