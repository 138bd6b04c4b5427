"""Packaging: the wheel installs hoptel.propagate and hoptel.interceptors, and no top-level propagate/interceptors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this checkout (no build isolation: the build backend is already installed)."""
    out = tmp_path_factory.mktemp("wheel")
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would also pack what an earlier build left there
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("hoptel-*.whl")
    return built


def test_wheel_contains_only_hoptel_packages(wheel: Path) -> None:
    """Every module in the wheel is under hoptel/, including the propagate and interceptors subpackages."""
    names = zipfile.ZipFile(wheel).namelist()
    modules = [n for n in names if n.endswith(".py")]
    top_levels = {n.split("/", 1)[0] for n in modules}
    assert top_levels == {"hoptel"}
    assert "hoptel/propagate/__init__.py" in names
    assert "hoptel/interceptors/__init__.py" in names
    assert "hoptel/interceptors/recorder.py" in names
    assert "hoptel/py.typed" in names


def test_every_source_file_is_in_the_wheel_under_its_import_name(wheel: Path) -> None:
    """Each .py file of hoptel/, propagate/ and interceptors/, subfolders included, ships as hoptel/...; nothing else.

    Subpackages are discovered (setup.py), so a new folder with an ``__init__.py`` ships without a list to edit.
    """
    folders = {"hoptel": "hoptel", "propagate": "hoptel/propagate", "interceptors": "hoptel/interceptors"}
    expected = set()
    for folder, import_path in folders.items():
        for source in (ROOT / folder).rglob("*.py"):
            expected.add(f"{import_path}/{source.relative_to(ROOT / folder).as_posix()}")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    assert "hoptel/interceptors/grpc/client.py" in expected  # the walk found the nested layout
    assert shipped == expected, f"missing: {sorted(expected - shipped)}; unexpected: {sorted(shipped - expected)}"


def test_wheel_imports_the_same_names_as_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """Installed from the wheel (not editable), hoptel exposes the public API and the two subpackages."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    script = (
        "import hoptel, hoptel.propagate, hoptel.interceptors, hoptel.receiver, importlib.util;"
        "print(hoptel.__file__);"
        "print(sorted(hoptel.__all__));"
        "[getattr(hoptel, n) for n in hoptel.__all__];"
        "print(importlib.util.find_spec('propagate'), importlib.util.find_spec('interceptors'))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    first, names, specs = result.stdout.splitlines()
    assert first.startswith(str(target))
    import hoptel

    assert names == str(sorted(hoptel.__all__))
    assert specs == "None None"
