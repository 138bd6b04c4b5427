"""Helpers shared by more than one test folder, one concept per module.

``tests/`` has no packages: pytest imports every folder's files as top-level modules (its default ``prepend``
import mode puts each folder on ``sys.path``), so a folder's own helpers import by their bare names
(``import hooks_support``). This package is the one exception: ``pythonpath = ["tests"]`` in ``pyproject.toml``
puts ``tests/`` itself on ``sys.path`` before any conftest is loaded, so every folder imports these modules as
``support.<module>`` (``from support.uvicorn_server import run_uvicorn``).

A helper used by one folder only stays in that folder.
"""
