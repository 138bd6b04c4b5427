"""Finding the command-line programs the test extras install (``uvicorn``, ``opentelemetry-instrument``, ...)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

__all__ = ["installed_program"]

_BIN = Path(sys.executable).parent


def installed_program(name: str) -> str:
    """The path of ``name``: first beside the running interpreter (its venv's ``bin``), then on ``PATH``.

    A test run as ``.venv/bin/python -m pytest`` without activating the venv thus still starts the venv's program,
    not another copy found on ``PATH``. Fails the test when the program is nowhere.
    """
    found = shutil.which(name, path=str(_BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (it comes with the test extras: scripts/setup)")
    return found
