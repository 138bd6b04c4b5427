"""The runtime dependencies in pyproject.toml are exactly the distributions the package imports at run time.

Every import under ``hoptel/``, ``propagate/`` and ``interceptors/`` (the OTLP receiver included) is read with
``ast``, resolved to the installed distribution that provides the module, and compared with
``[project.dependencies]``. Imports that are not made at run time are left out: those under ``if TYPE_CHECKING:``,
those guarded by ``except ImportError``, and those of ``interceptors/auto/distro.py``, which only
``opentelemetry-instrument`` loads (the ``auto`` extra brings what it needs).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Iterator
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomli, the library tomllib came from (pytest's own dependency there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("hoptel", "propagate", "interceptors")
# Modules loaded only through an extra's entry points: file -> the extra that must declare their imports.
EXTRA_ONLY = {"interceptors/auto/distro.py": "auto"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return _normalized(match.group(0))


def _module_owners() -> dict[str, str]:
    """Every installed module and package (dotted) -> the distribution whose files hold it."""
    owners: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = _normalized(dist.metadata["Name"])
        for file in dist.files or ():
            parts = file.parts
            if not parts or file.suffix not in {".py", ".so", ".pyi"} or ".." in parts:
                continue
            module = ".".join((*parts[:-1], parts[-1].split(".")[0]))
            owners.setdefault(module.removesuffix(".__init__"), name)
    return owners


def _guarded_by_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in {"ImportError", "ModuleNotFoundError"} for n in names)


def _runtime_imports(tree: ast.AST) -> Iterator[list[str]]:
    """For each runtime import, the dotted names it may mean (most specific first)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
        if isinstance(node, ast.Try) and any(_guarded_by_import_error(h) for h in node.handlers):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield [alias.name]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield [f"{node.module}.{alias.name}", node.module]


def _imported_distributions() -> dict[str, dict[str, set[str]]]:
    """Distribution -> {"": files importing it} or {extra: files} for the extra-only modules."""
    owners = _module_owners()
    found: dict[str, dict[str, set[str]]] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for candidates in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
                top = candidates[-1].split(".")[0]
                if top in sys.stdlib_module_names or top == "hoptel":
                    continue
                owner = _owner(candidates, owners)
                assert owner is not None, f"{relative}: no installed distribution provides {candidates[-1]}"
                found.setdefault(owner, {}).setdefault(EXTRA_ONLY.get(relative, ""), set()).add(relative)
    return found


def _owner(candidates: list[str], owners: dict[str, str]) -> str | None:
    for candidate in candidates:
        parts = candidate.split(".")
        for end in range(len(parts), 0, -1):
            owner = owners.get(".".join(parts[:end]))
            if owner is not None:
                return owner
    return None


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def test_runtime_dependencies_are_what_the_package_imports() -> None:
    """[project.dependencies] names every distribution imported at run time, and nothing else."""
    declared = {_requirement_name(r) for r in _project()["dependencies"]}  # type: ignore[attr-defined]
    imported = _imported_distributions()
    runtime = {dist for dist, where in imported.items() if "" in where}
    missing = {dist: sorted(imported[dist][""]) for dist in runtime - declared}
    assert not missing, f"imported at run time but not in [project.dependencies]: {missing}"
    assert not declared - runtime, f"in [project.dependencies] but never imported: {sorted(declared - runtime)}"


def test_extra_only_modules_have_their_extra() -> None:
    """What only an extra's modules import (the zero-code distro) is in that extra, unless a runtime dependency."""
    project = _project()
    declared = {_requirement_name(r) for r in project["dependencies"]}  # type: ignore[attr-defined]
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    checked = 0
    for dist, where in _imported_distributions().items():
        for extra in set(where) - {""}:
            checked += 1
            assert dist in declared or dist in {_requirement_name(r) for r in extras[extra]}, (dist, extra)
    assert checked, "hoptel.interceptors.auto.distro imports opentelemetry-instrumentation; the scan found nothing"


def test_b3_is_a_test_dependency_only() -> None:
    """opentelemetry-propagator-b3 is used by the tests alone (hoptel has its own b3): the test extra has it."""
    project = _project()
    declared = {_requirement_name(r) for r in project["dependencies"]}  # type: ignore[attr-defined]
    extras: dict[str, list[str]] = project["optional-dependencies"]  # type: ignore[assignment]
    assert "opentelemetry-propagator-b3" not in declared
    assert "opentelemetry-propagator-b3" in {_requirement_name(r) for r in extras["test"]}
