"""Whether the tests run under CI, where what a test needs must be there."""

from __future__ import annotations

import os

__all__ = ["in_ci"]


def in_ci() -> bool:
    """True under CI (CI=true), where a missing external program fails a test instead of skipping it."""
    return os.environ.get("CI", "").lower() == "true"
