"""Lists hoptel's packages by walking its three source folders, so a new subfolder ships without a list to edit.

Everything else about the build is in pyproject.toml; its ``package-dir`` maps ``propagate/`` and
``interceptors/`` to ``hoptel.propagate`` and ``hoptel.interceptors`` (tests/packaging checks the built wheel).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup

# Import name of each source folder at the top of the repository.
SOURCE_FOLDERS = {"hoptel": "hoptel", "hoptel.propagate": "propagate", "hoptel.interceptors": "interceptors"}


def discover_packages() -> list[str]:
    """Every folder holding an ``__init__.py`` under the source folders, by its import name."""
    root = Path(__file__).resolve().parent
    packages = []
    for import_name, folder in SOURCE_FOLDERS.items():
        base = root / folder
        for init in sorted(base.rglob("__init__.py")):
            packages.append(".".join((import_name, *init.parent.relative_to(base).parts)))
    return packages


setup(packages=discover_packages())
