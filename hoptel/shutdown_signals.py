"""A bounded flush before SIGTERM or SIGINT ends a process whose signal disposition is still the default.

A process killed by a signal it does not handle runs no ``atexit`` callback, so the spans and log records still
queued are lost. That is what happens to a plain ``grpc.server`` entrypoint ending in
``server.wait_for_termination()`` when Kubernetes or ``docker stop`` sends SIGTERM. For such a process ``setup()``
installs :func:`_on_signal` for every signal of :data:`HANDLED_SIGNALS` whose disposition is still ``SIG_DFL``
(and only when it runs in the main thread, the only thread that may set handlers). When the signal arrives the
handler:

1. flushes every open Telemetry (``Telemetry.flush``: spans exported, log lines written and exported) on a helper
   thread and joins it for at most :data:`SIGNAL_FLUSH_S`: the main thread was interrupted at an arbitrary point
   and may hold a lock the flush needs, so the flush never runs on it and never holds the process longer than the
   bound;
2. restores ``SIG_DFL`` and raises the signal again, so the process ends as it would have without hoptel: killed
   by the signal (a parent sees -15, a shell 143 for SIGTERM).

A process the re-raised signal does not end carries on as it would have, with its telemetry working (it was
flushed, not shut down) and hoptel's handler back in place: PID 1 of a container, for which the kernel ignores a
signal left at ``SIG_DFL`` (``docker stop`` then ends it with SIGKILL after its grace period; run it under an init
such as ``docker run --init`` or tini to have SIGTERM end it).

A disposition that is not ``SIG_DFL`` is never replaced: a handler the application, the server (uvicorn, gunicorn,
grpc.aio, asyncio's ``add_signal_handler``) or Python itself installed, or ``SIG_IGN``. Python's own SIGINT
handler raises ``KeyboardInterrupt``, which unwinds the main thread through ``atexit`` (where
``Telemetry.shutdown`` runs), so SIGINT is handled here only where someone set it back to ``SIG_DFL``. A server
that restores the disposition it found and raises the signal again after its graceful shutdown (uvicorn does)
reaches hoptel's handler that way when ``setup()`` ran before the server took the signal over.

Several ``setup()`` calls share the one handler: it is installed once and flushes every Telemetry not shut down
yet. When the last of them shuts down, the default disposition comes back where hoptel's handler is still the one
installed. ``HOPTEL_SIGNALS=off`` (``setup(signals=False)``) leaves signals alone.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Protocol

from hoptel.background import start_daemon

__all__ = ["HANDLED_SIGNALS", "SIGNAL_FLUSH_S", "Flushable", "flush_on_signals", "forget", "installed_signals"]

HANDLED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
"""The signals hoptel flushes on, where their disposition is ``SIG_DFL`` when ``setup()`` runs."""

SIGNAL_FLUSH_S = 5.0
"""The longest the flush may hold a signalled process (half of ``docker stop``'s default grace period)."""

_EXIT_MARGIN_S = 0.5
"""Of :data:`SIGNAL_FLUSH_S`, what the flush leaves to the log pipeline's floor and to the exit."""


class Flushable(Protocol):
    """What the handler flushes: a ``Telemetry`` (anything with a bounded ``flush``)."""

    def flush(self, timeout: float = ...) -> bool:
        """Export and write what is queued, within about ``timeout`` seconds."""


_lock = threading.Lock()
_owners: list[Flushable] = []  # open Telemetry objects, oldest first
_ours: set[signal.Signals] = set()  # signals whose disposition hoptel set


def flush_on_signals(owner: Flushable) -> tuple[signal.Signals, ...]:
    """Flush ``owner`` when a signal of :data:`HANDLED_SIGNALS` with the default disposition arrives.

    Installs hoptel's handler for each such signal whose disposition is ``SIG_DFL`` now, once per process (a
    signal already carrying hoptel's handler keeps it; any other disposition is left alone). Outside the main
    thread nothing is installed, since Python lets only the main thread set handlers.

    Args:
        owner: Flushed (bounded) by the handler; call :func:`forget` when it shuts down.

    Returns:
        The signals whose handler is hoptel's after this call (empty: the process keeps its own handling).
    """
    with _lock:
        if owner not in _owners:
            _owners.append(owner)
        if threading.current_thread() is not threading.main_thread():
            return tuple(sorted(_ours))
        for signum in HANDLED_SIGNALS:
            current = signal.getsignal(signum)
            if current is _on_signal:
                _ours.add(signum)
            elif current == signal.SIG_DFL:
                signal.signal(signum, _on_signal)
                _ours.add(signum)
        return tuple(sorted(_ours))


def forget(owner: Flushable) -> None:
    """``owner`` shut down: stop flushing it; with no owner left, give back ``SIG_DFL`` where the handler is ours.

    A handler someone installed over hoptel's is left alone. Off the main thread (or while the handler itself
    runs the flush) the dispositions are left as they are; the handler restores them itself.
    """
    with _lock:
        if owner in _owners:
            _owners.remove(owner)
        if _owners or threading.current_thread() is not threading.main_thread():
            return
        for signum in sorted(_ours):
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, signal.SIG_DFL)
        _ours.clear()


def installed_signals() -> tuple[signal.Signals, ...]:
    """The signals whose disposition is hoptel's handler right now."""
    return tuple(signum for signum in HANDLED_SIGNALS if signal.getsignal(signum) is _on_signal)


def _flush_all(owners: list[Flushable], deadline: float) -> None:
    """Flush each owner, newest first, sharing what is left of the bound (helper thread)."""
    for owner in reversed(owners):
        remaining = deadline - time.monotonic() - _EXIT_MARGIN_S
        try:
            owner.flush(max(remaining, 0.1))
        except Exception:  # a failing flush must not keep the signal from ending the process
            continue


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Flush every open Telemetry within :data:`SIGNAL_FLUSH_S`, then end the process with the same signal."""
    # No lock here: the interrupted main thread may hold it. Copying a list is one step under the GIL.
    owners = list(_owners)
    deadline = time.monotonic() + SIGNAL_FLUSH_S
    flusher = start_daemon(lambda: _flush_all(owners, deadline), "hoptel-signal-flush")
    flusher.join(max(0.0, deadline - time.monotonic()))
    _end_with(signum)


def _end_with(signum: int) -> None:
    """Give ``signum`` its default disposition back and raise it: the process ends as it would have.

    When that returns, the default disposition did not end the process (PID 1 of a container): hoptel's handler
    goes back in place for the next signal, unless something else was installed meanwhile.
    """
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
    if signal.getsignal(signum) == signal.SIG_DFL:
        signal.signal(signum, _on_signal)
