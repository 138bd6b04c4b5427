"""What hoptel's background workers share: starting a daemon thread, closing once, fork hooks holding owners weakly."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["Once", "on_fork", "start_daemon"]

_T = TypeVar("_T")


def start_daemon(target: Callable[[], object], name: str) -> threading.Thread:
    """Start a daemon thread named ``name`` running ``target``; return it."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


class Once:
    """A flag exactly one caller sets: ``if not self._closing.claim(): return`` makes a ``close()`` run once."""

    __slots__ = ("_lock", "done")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.done = False

    def claim(self) -> bool:
        """Set the flag; ``True`` for the one call that set it, ``False`` for every later (or concurrent) one."""
        with self._lock:
            if self.done:
                return False
            self.done = True
            return True


def on_fork(
    owner: _T,
    *,
    before: Callable[[_T], object] | None = None,
    after_in_parent: Callable[[_T], object] | None = None,
    after_in_child: Callable[[_T], object] | None = None,
) -> None:
    """Around each later ``fork()``, call the given functions with ``owner`` if it is still alive.

    Pass functions of the owner (``Class.method``), not bound methods: a bound method would hold it strongly.
    Nothing is registered where the platform cannot fork.
    """
    if not hasattr(os, "register_at_fork"):
        return
    held = weakref.ref(owner)

    def hook(call: Callable[[_T], object] | None) -> Callable[[], None] | None:
        if call is None:
            return None

        def run() -> None:
            live = held()
            if live is not None:
                call(live)

        return run

    hooks = {"before": hook(before), "after_in_parent": hook(after_in_parent), "after_in_child": hook(after_in_child)}
    os.register_at_fork(**{when: run for when, run in hooks.items() if run is not None})
