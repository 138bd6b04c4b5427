"""The loggers of the servers that run the app (uvicorn, gunicorn), routed into the log pipeline.

uvicorn and gunicorn give their loggers console handlers of their own and turn propagation off, so their lines
would never reach the root logger, where the pipeline's handler is:

- uvicorn (``uvicorn app:app``, ``uvicorn.run(app)``) applies its ``LOGGING_CONFIG`` with ``dictConfig``:
  ``uvicorn`` and ``uvicorn.access`` get a ``StreamHandler`` each (stderr, stdout) and ``propagate=False``;
  ``uvicorn.error`` propagates to ``uvicorn``.
- gunicorn's ``glogging.Logger`` gives ``gunicorn.error`` (stderr by default) and ``gunicorn.access``
  (``--access-logfile -``: stdout) their handlers and ``propagate=False``; its ``UvicornWorker`` hands the same
  handler lists to ``uvicorn.error`` and ``uvicorn.access``, also with ``propagate=False``.

:class:`ServerLoggers` adopts them: each console handler (see
:func:`~hoptel.logs.pipeline.console_handlers`) is moved aside and the logger propagates to the root logger.
Levels are left as the server set them (``--log-level``), and so are handlers that write elsewhere (a file given
with ``--access-logfile access.log`` keeps receiving its lines, which now also reach the pipeline).
``restore()`` puts back the handlers and the ``propagate`` values it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["SERVER_LOGGERS", "ServerLoggers"]

SERVER_LOGGERS: tuple[str, ...] = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "gunicorn.error",
    "gunicorn.access",
)
"""The loggers adopted: uvicorn's and gunicorn's error and access loggers."""

ConsoleHandlers = Callable[[logging.Logger], list[logging.Handler]]
"""Picks the handlers of a logger that write to the console (the pipeline's rule)."""


@dataclass
class _Adopted:
    """What adopting one logger changed."""

    logger: logging.Logger
    propagate: bool
    handlers: list[logging.Handler] = field(default_factory=list)


class ServerLoggers:
    """Moves the server loggers' console handlers aside and makes them propagate; puts everything back later.

    Args:
        console_handlers: Which handlers of a logger count as console handlers.
        names: The loggers to adopt (default: :data:`SERVER_LOGGERS`).
    """

    def __init__(self, console_handlers: ConsoleHandlers, names: tuple[str, ...] = SERVER_LOGGERS) -> None:
        self._console_handlers = console_handlers
        self._names = names
        self._adopted: dict[str, _Adopted] = {}

    @property
    def moved_handlers(self) -> dict[str, tuple[logging.Handler, ...]]:
        """The console handlers moved aside so far, by logger name."""
        return {name: tuple(adopted.handlers) for name, adopted in self._adopted.items() if adopted.handlers}

    def adopt(self) -> list[str]:
        """Route every server logger that has console handlers or does not propagate into the root logger.

        Safe to call again (after the server reconfigured its loggers): loggers already routed are left alone,
        and a logger whose handlers the server replaced is adopted afresh (the replaced handlers were closed by
        the reconfiguration, so they are forgotten rather than put back).

        Returns:
            The names of the loggers changed by this call.
        """
        manager = logging.Logger.manager
        changed: list[str] = []
        for name in self._names:
            node = manager.loggerDict.get(name)
            if not isinstance(node, logging.Logger):  # never created: the server is not in this process
                continue
            console = self._console_handlers(node)
            if node.propagate and not console:
                continue
            adopted = self._adopted.get(name)
            if adopted is None or adopted.logger is not node:
                adopted = self._adopted[name] = _Adopted(node, node.propagate)
            elif not node.propagate:  # reconfigured since the last adoption: start over from what it is now
                adopted.propagate = False
                adopted.handlers = []
            for handler in console:
                node.removeHandler(handler)
                # gunicorn's UvicornWorker shares one handler list between gunicorn.x and uvicorn.x
                if handler not in adopted.handlers:
                    adopted.handlers.append(handler)
            node.propagate = True
            changed.append(name)
        return changed

    def restore(self) -> None:
        """Put back the moved handlers and the original ``propagate`` values."""
        for adopted in self._adopted.values():
            logger = adopted.logger
            for handler in adopted.handlers:
                if handler not in logger.handlers:
                    logger.addHandler(handler)
            logger.propagate = adopted.propagate
        self._adopted.clear()
