"""``HOPTEL_LOG`` directives: parse ``LEVEL[,logger=LEVEL]...`` and apply them as logger levels.

A directive list works like ``RUST_LOG``: a bare level is the default (the root logger's level), and
``name=LEVEL`` sets the level of the logger ``name`` and, through Python's level inheritance, of every logger
below it (``grpc=warning`` covers ``grpc._channel`` and ``grpc.aio``). The most specific name wins.

They are applied as plain logger levels, so a suppressed call costs the logger's cached ``isEnabledFor`` check
and no record is built. Levels: ``debug``, ``info``, ``warning`` (or ``warn``), ``error``, ``critical`` and
``off`` (above every level). Names are case-insensitive.

>>> directives = parse_directives("info,grpc=warning,grpc._channel=error")
>>> logging.getLevelName(directives.level_for("grpc.aio"))
'WARNING'
>>> logging.getLevelName(directives.level_for("grpc._channel.sub"))
'ERROR'
>>> logging.getLevelName(directives.level_for("orders"))
'INFO'
>>> str(directives)
'info,grpc=warning,grpc._channel=error'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["LEVELS", "OFF", "Directives", "LoggerLevels", "parse_directives"]

OFF = 2**31 - 1
"""The level ``off`` maps to: above ``CRITICAL`` and every custom level, so nothing passes."""

LEVELS: Mapping[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "off": OFF,
}
"""Level names a directive accepts (lower case), and the logging level each stands for."""

_CANONICAL = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
    OFF: "off",
}
_EXPECTED = "debug, info, warning, error, critical, off"
_NAME_FORBIDDEN = frozenset(" \t\r\n=,")


@dataclass(frozen=True, slots=True)
class Directives:
    """A parsed directive list.

    Attributes:
        default: The level of the root logger (``WARNING``, Python's own default, when no bare level is given).
        loggers: ``(logger name, level)`` pairs in the order given; a name given twice keeps its last level.
    """

    default: int
    loggers: tuple[tuple[str, int], ...] = ()

    def level_for(self, name: str) -> int:
        """The level that applies to the logger ``name``: its own directive, its nearest ancestor's, or the default.

        Args:
            name: A dotted logger name.

        Returns:
            The logging level.
        """
        best_length = -1
        level = self.default
        for logger_name, logger_level in self.loggers:
            if (name == logger_name or name.startswith(logger_name + ".")) and len(logger_name) > best_length:
                best_length = len(logger_name)
                level = logger_level
        return level

    def __str__(self) -> str:
        """The canonical directive text (level names in lower case, ``warn`` spelt ``warning``)."""
        parts = [_CANONICAL.get(self.default, str(self.default))]
        parts.extend(f"{name}={_CANONICAL.get(level, str(level))}" for name, level in self.loggers)
        return ",".join(parts)


def _bad(variable: str, text: str, part: str, why: str) -> ValueError:
    return ValueError(f"{variable}={text!r}: bad directive {part!r} ({why})")


def _level(variable: str, text: str, part: str, word: str) -> int:
    level = LEVELS.get(word.strip().lower())
    if level is None:
        raise _bad(variable, text, part, f"unknown level {word.strip()!r}; expected one of {_EXPECTED}")
    return level


def parse_directives(text: str, variable: str = "HOPTEL_LOG") -> Directives:
    """Parse a directive list such as ``"info,grpc=warning,httpx=warning"``.

    Empty items (``"info,"``) are ignored. A later bare level or a later directive for the same logger wins.

    Args:
        text: The directive list.
        variable: The name used in error messages (the environment variable it came from).

    Returns:
        The parsed directives.

    Raises:
        ValueError: a directive is malformed; the message names the variable, the whole value and the bad part,
            e.g. ``HOPTEL_LOG='info,x=y': bad directive 'x=y' (unknown level 'y'; ...)``.
    """
    default = logging.WARNING
    loggers: dict[str, int] = {}
    seen_any = False
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        seen_any = True
        name, sep, word = part.partition("=")
        if not sep:
            if part.lower() not in LEVELS:
                raise _bad(variable, text, part, f"expected LEVEL or logger=LEVEL; levels are {_EXPECTED}")
            default = LEVELS[part.lower()]
            continue
        name = name.strip()
        if not name:
            raise _bad(variable, text, part, "the logger name before '=' is missing")
        if any(c in _NAME_FORBIDDEN for c in name) or name.startswith(".") or name.endswith("."):
            raise _bad(variable, text, part, f"{name!r} is not a logger name")
        if "=" in word:
            raise _bad(variable, text, part, "more than one '='")
        loggers.pop(name, None)  # re-insert so the order reflects the directive that wins
        loggers[name] = _level(variable, text, part, word)
    if not seen_any:
        raise ValueError(f"{variable}={text!r}: no directives (expected e.g. 'info,grpc=warning')")
    return Directives(default, tuple(loggers.items()))


class LoggerLevels:
    """Applies directives to the live logger tree and puts back every level it changed.

    ``apply()`` sets the root logger to the default level and each named logger to its level. A descendant of a
    named logger that has an explicit level of its own (set by a library or by dictConfig) and no directive of its
    own is reset to ``NOTSET`` so that the directive covers it too. Loggers created later inherit as usual; a
    library that sets an explicit level on a new logger after ``apply()`` keeps it.

    Calling ``apply()`` again moves from the old directives to the new ones one logger at a time (there is no
    moment where the originals are back); ``restore()`` puts back the level every touched logger had before the
    first ``apply()``, or the level something else gave it since (``dictConfig`` after ``apply()``): that one
    becomes the level to put back, and the next ``apply()`` sets the directive's level again.
    """

    def __init__(self, manager: logging.Manager | None = None) -> None:
        self._manager = manager or logging.Logger.manager
        self._originals: dict[str, int] = {}  # "" is the root logger
        self._applied: dict[str, int] = {}  # the level apply() left each touched logger at

    def _logger(self, name: str) -> logging.Logger:
        return self._manager.root if name == "" else self._manager.getLogger(name)

    def _original(self, name: str) -> int:
        if name not in self._originals:
            self._originals[name] = self._logger(name).level
        return self._originals[name]

    def apply(self, directives: Directives) -> None:
        """Make the logger levels match ``directives``.

        Args:
            directives: What to apply.
        """
        for name, applied in self._applied.items():
            level = self._logger(name).level
            if level != applied:  # changed by something else since: that is now the level to put back
                self._originals[name] = level
        targets: dict[str, int] = {"": directives.default}
        named = dict(directives.loggers)
        targets.update(named)
        existing = [
            name
            for name, node in list(self._manager.loggerDict.items())
            if isinstance(node, logging.Logger) and name not in named
        ]
        for parent in named:
            prefix = parent + "."
            for name in existing:
                if name.startswith(prefix) and self._original(name) != logging.NOTSET:
                    targets[name] = logging.NOTSET
        for name in targets:
            self._original(name)
        for name, original in self._originals.items():
            level = targets.get(name, original)
            logger = self._logger(name)
            if logger.level != level:
                logger.setLevel(level)
            self._applied[name] = level

    def restore(self) -> None:
        """Put back the original level of every logger ``apply()`` touched."""
        for name, original in self._originals.items():
            logger = self._logger(name)
            if logger.level != original:
                logger.setLevel(original)
        self._originals.clear()
        self._applied.clear()
