"""ARCHITECTURE.md stays true: its code map matches the tree, and the import rules it states hold.

Imports are read with ``ast`` (every ``import`` and ``from ... import``, lazy ones inside functions and those under
``if TYPE_CHECKING:`` included), so a rule is broken by any mention of a forbidden module, not only by one that runs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "ARCHITECTURE.md"
# Source folder -> import name (pyproject.toml's package-dir).
SOURCE_FOLDERS = {"hoptel": "hoptel", "propagate": "hoptel.propagate", "interceptors": "hoptel.interceptors"}


def _package_folders() -> set[str]:
    """Every folder under the source folders that holds an ``__init__.py``, as ``folder/`` relative to the root."""
    return {
        f"{init.parent.relative_to(ROOT).as_posix()}/"
        for folder in SOURCE_FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }


def _map_sections() -> dict[str, str]:
    """The code map's sections: ``### `folder/` — ...`` headings and the text under each."""
    text = ARCHITECTURE.read_text()
    code_map = text.split("## Code map", 1)[1].split("\n## ", 1)[0]
    sections: dict[str, str] = {}
    for part in re.split(r"^### ", code_map, flags=re.MULTILINE)[1:]:
        heading, _, body = part.partition("\n")
        match = re.match(r"`([^`]+/)`", heading)
        if match:
            sections[match.group(1)] = body
    return sections


def _import_name(path: Path) -> str:
    """The module name a source file installs as."""
    relative = path.relative_to(ROOT)
    top = SOURCE_FOLDERS[relative.parts[0]]
    parts = [*relative.parts[1:-1], relative.stem]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([top, *parts])


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    package = _import_name(path) if path.name == "__init__.py" else _import_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # ``from hoptel.interceptors import grpc`` names a module too
                yield node.lineno, f"{module}.{alias.name}"


def _violations(folder: str, forbidden: tuple[str, ...], *, skip: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.relative_to(ROOT).as_posix() in skip:
            continue
        for line, module in _imports(path):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def test_code_map_names_every_package_folder_and_only_existing_ones() -> None:
    """Each package folder has a section in the code map, and each section's folder exists."""
    sections = set(_map_sections())
    assert "interceptors/grpc/" in sections  # the parse found the headings
    folders = _package_folders()
    assert folders - sections == set(), "folders missing from ARCHITECTURE.md's code map"
    assert sections - folders == set(), "ARCHITECTURE.md's code map names folders that are not packages"


def test_code_map_names_only_modules_that_exist_in_their_folder() -> None:
    """Every ``module.py`` a section names (globs such as ``worker_*.py`` too) is a file of that section's folder."""
    checked = 0
    for folder, body in _map_sections().items():
        for name in re.findall(r"`([\w*]+\.py)`", body):
            assert list((ROOT / folder).glob(name)), f"ARCHITECTURE.md names {folder}{name}, which does not exist"
            checked += 1
    assert checked > 30


@pytest.mark.parametrize(
    ("folder", "forbidden", "skip"),
    [
        pytest.param("hoptel", ("hoptel.interceptors",), ("hoptel/__init__.py",), id="core-never-imports-integrations"),
        pytest.param("propagate", ("hoptel.interceptors", "hoptel.receiver", "hoptel.logs"), (), id="propagate-alone"),
        pytest.param("hoptel/receiver", ("hoptel.interceptors", "hoptel.propagate"), (), id="receiver-alone"),
        pytest.param("interceptors/grpc", ("hoptel.interceptors.http",), (), id="grpc-never-imports-http"),
        pytest.param("interceptors/http", ("hoptel.interceptors.grpc",), (), id="http-never-imports-grpc"),
    ],
)
def test_import_rules(folder: str, forbidden: tuple[str, ...], skip: tuple[str, ...]) -> None:
    """The import rules of ARCHITECTURE.md's code map hold for every module of the folder."""
    assert _violations(folder, forbidden, skip=skip) == []


def test_propagate_imports_of_hoptel_are_itself_and_otel_internals() -> None:
    """``propagate/`` may import the standard library, opentelemetry-api and ``hoptel.otel_internals`` only."""
    found = []
    for path in sorted((ROOT / "propagate").rglob("*.py")):
        for line, module in _imports(path):
            if module.startswith("hoptel.") and not module.startswith(("hoptel.propagate", "hoptel.otel_internals")):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if module.startswith("opentelemetry.sdk") or module.startswith("opentelemetry.exporter"):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert found == []


def test_public_reexports_are_lazy() -> None:
    """``hoptel/__init__.py`` mentions the integrations only under ``if TYPE_CHECKING:`` and in its lazy table."""
    tree = ast.parse((ROOT / "hoptel" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            assert not (module or "").startswith("hoptel.interceptors"), f"line {node.lineno} imports {module} eagerly"


def test_the_rules_see_a_violation() -> None:
    """The scan finds real imports, lazy ones inside functions included (a rule that cannot fail checks nothing)."""
    assert _violations("interceptors/grpc", ("hoptel.interceptors.recorder",)) != []
    lazy = ROOT / "hoptel" / "__init__.py"  # its integration imports sit under ``if TYPE_CHECKING:``
    assert "hoptel.interceptors.grpc.server" in {module for _, module in _imports(lazy)}
