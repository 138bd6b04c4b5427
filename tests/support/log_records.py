"""Collecting what one logger emits while a block runs."""

from __future__ import annotations

import logging

__all__ = ["LogRecords"]


class LogRecords(logging.Handler):
    """Collects the records of one logger while installed (``with LogRecords("hoptel.hooks") as logs``)."""

    def __init__(self, logger: str) -> None:
        super().__init__(logging.DEBUG)
        self._logger = logging.getLogger(logger)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.WARNING) -> list[str]:
        """The messages of the records at ``level`` or above."""
        return [record.getMessage() for record in self.records if record.levelno >= level]

    def __enter__(self) -> LogRecords:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
