"""Noticing that logging was reconfigured, and reacting before the next record is handled.

``logging.config.dictConfig`` and ``fileConfig`` start by closing every handler ``logging`` knows of (through
``logging.shutdown(logging._handlerList)``); ``basicConfig(force=True)`` closes the root logger's handlers. Then
they install their own. uvicorn does this in ``uvicorn.run()`` (its ``LOGGING_CONFIG``), after ``hoptel.setup()``
has already run, and so may the application.

:class:`ReconfigureWatch` turns that ``close()`` into a signal: :meth:`ReconfigureWatch.mark` is what the log
pipeline's handler calls when it is closed by someone else, and the watch keeps a handler of its own (never
attached to a logger, it only exists to be closed) so that a ``dictConfig`` that leaves the root logger alone is
seen too. A mark swaps in a log record factory (chained to the factory in place); the next record created, on
whichever thread, runs the callback first, synchronously, and puts the previous factory back. The callback thus
sees the new configuration complete, and the record that triggered it is already handled by the result.

Cost: nothing per record while nothing happens (the record factory is only swapped while a mark is pending); one
call on the first record after a reconfiguration.

The child of an ``os.fork()`` is marked too: gunicorn with ``--preload`` runs the app module (and ``setup()``) in
the master, then builds each worker there, and ``UvicornWorker`` hands uvicorn's loggers gunicorn's handler lists
with ``propagate=False`` by plain assignment, which closes nothing.

A handler removed with ``removeHandler()`` is not closed, so it is not noticed: that is taken as deliberate.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from hoptel.background import on_fork

__all__ = ["ReconfigureWatch"]

RecordFactory = Callable[..., logging.LogRecord]


def _report() -> None:
    """Print the reaction's failure on the real stderr: logging it could fail the same way."""
    stream = sys.__stderr__
    if stream is not None:
        stream.write("hoptel: reacting to a logging reconfiguration failed:\n")
        traceback.print_exc(file=stream)


class _Tripwire(logging.Handler):
    """A handler attached to no logger: ``logging.config`` closes it along with every other handler."""

    def __init__(self, watch: ReconfigureWatch) -> None:
        super().__init__()
        self._watch = watch

    def emit(self, record: logging.LogRecord) -> None:
        """Never called: the tripwire is attached to no logger."""

    def close(self) -> None:
        """Report the reconfiguration to the watch."""
        self._watch.mark()
        super().close()


class ReconfigureWatch:
    """Calls ``on_reconfigure`` on the thread of the first log record created after logging was reconfigured.

    Args:
        on_reconfigure: The reaction. It runs with the watch's lock held (a record another thread creates
            meanwhile does not wait for it) and should not raise; records it logs itself are created with the
            previous factory (no recursion).
    """

    def __init__(self, on_reconfigure: Callable[[], None]) -> None:
        self._on_reconfigure = on_reconfigure
        self._lock = threading.RLock()
        self._active = False
        self._armed = False
        self._chained = False  # a factory set on top of ours captured it: ours stays in the chain for good
        self._factory: RecordFactory = self._record  # one bound method, so ``is`` can find it again
        self._previous: RecordFactory = logging.getLogRecordFactory()
        self._tripwire: _Tripwire | None = None
        self.reconfigurations = 0
        """How many reconfigurations were handled (a burst of closes before the next record counts once)."""

    def start(self) -> None:
        """Begin watching: lay the tripwire that the next ``dictConfig``/``fileConfig`` closes."""
        with self._lock:
            self._active = True
            self._tripwire = _Tripwire(self)
        on_fork(self, after_in_child=ReconfigureWatch._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.RLock()  # another thread of the parent may have held it at the fork
        self.mark()

    def stop(self) -> None:
        """Stop watching; put the previous record factory back if it is still ours to remove."""
        with self._lock:
            self._active = False
            self._disarm()
            self._tripwire = None

    def mark(self) -> None:
        """Note a reconfiguration: the next record created runs ``on_reconfigure`` first.

        Called from a ``close()``, possibly with ``logging``'s module lock held: it only swaps the factory.
        """
        if not self._active or self._armed:
            return
        self._armed = True
        if not self._chained:
            self._previous = logging.getLogRecordFactory()
            logging.setLogRecordFactory(self._factory)

    def _record(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        """The record factory while armed: react once, then build the record as before."""
        if self._armed:
            self._fire()
        return self._previous(*args, **kwargs)

    def _fire(self) -> None:
        # Never wait for another thread's reaction: it may itself wait for logging's module lock, held by a thread
        # that is creating this record in the middle of a dictConfig. A record made meanwhile goes on as it is.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._react()
        finally:
            self._lock.release()

    def _react(self) -> None:
        if not self._armed:  # another thread reacted already
            return
        self._disarm()
        if not self._active:
            return
        # A new Handler takes logging's module lock: this waits for a dictConfig still under way on another thread.
        # A configuration that starts after this line closes the new tripwire and marks again.
        self._tripwire = _Tripwire(self)
        self.reconfigurations += 1
        try:
            self._on_reconfigure()
        except Exception:  # the record being created must not fail because of hoptel
            _report()

    def _disarm(self) -> None:
        if self._armed:
            self._armed = False
            if self._chained:
                return
            if logging.getLogRecordFactory() is self._factory:
                logging.setLogRecordFactory(self._previous)
            else:  # a factory was set on top of ours and calls it: ours stays and passes records through
                self._chained = True
