"""The worker's sink: format a batch, write it to the stream in one call, flush, and pass it on to OTLP.

Runs on the worker thread only. When the stream is the pipeline's
:class:`~hoptel.logs.line_guard.LineGuard` (``sys.stdout`` while the pipeline runs), the batch goes in between the
application's lines, never inside one. A record that fails to format becomes a short description line instead of
stopping the batch; a stream that fails (closed, broken pipe) is reported once on the real stderr and the
batch is dropped, so the application never sees the error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO

from hoptel.logs.fields import Entry
from hoptel.logs.line_guard import LineGuard

__all__ = ["Formatter", "StreamWriter"]

Formatter = Callable[[Entry], str]
"""Turns one entry into its text (one line, or several for a traceback), without the trailing newline."""


class StreamWriter:
    """Formats each batch and writes it to ``stream`` (``sys.stdout`` as it is at write time when ``None``).

    Args:
        formatter: The line format (JSON or text).
        stream: Where to write; ``None`` means whatever ``sys.stdout`` is when a batch is written.
        forward: Also called with each batch after it was written (the OTLP bridge), or ``None``.
    """

    def __init__(
        self,
        formatter: Formatter,
        stream: TextIO | None = None,
        forward: Callable[[list[Entry]], None] | None = None,
    ) -> None:
        self.formatter = formatter
        self._stream = stream
        self._forward = forward
        self._reported = False

    def __call__(self, batch: list[Entry]) -> None:
        """Write one batch."""
        formatter = self.formatter
        lines: list[str] = []
        for entry in batch:
            try:
                lines.append(formatter(entry))
            except Exception as error:
                record = entry[0]
                lines.append(f"hoptel: could not format a record from {record.name!r}: {error!r}")
        lines.append("")
        self._write("\n".join(lines))
        if self._forward is not None:
            self._forward(batch)

    def _write(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        if stream is None:  # e.g. pythonw: there is no stdout
            return
        write: Callable[[str], object]
        flush: Callable[[], None] | None
        if isinstance(stream, LineGuard):
            write, flush = stream.write_lines, None  # write_lines() flushes, under the guard's lock
        else:
            write, flush = stream.write, stream.flush
        try:
            try:
                write(text)
            except UnicodeEncodeError:
                encoding = getattr(stream, "encoding", None) or "ascii"
                write(text.encode(encoding, "backslashreplace").decode(encoding))
            if flush is not None:
                flush()
        except (OSError, ValueError) as error:  # closed stream, broken pipe, full disk
            self._report(error)

    def _report(self, error: BaseException) -> None:
        if self._reported:
            return
        self._reported = True
        stderr = sys.__stderr__
        if stderr is not None and stderr is not self._stream:
            try:
                stderr.write(f"hoptel: cannot write logs ({error!r}); further errors are not reported\n")
                stderr.flush()
            except (OSError, ValueError):
                pass
