"""scripts/setup installs into the project's own .venv, makes it again when needed, runs pip only on a change.

VENV names another environment of the checkout (.ci/run keeps one per interpreter, .venv-3.10 ... .venv-3.13).

The logic is checked on a copy of the script with a stand-in interpreter (no pip, no network, well under a second);
one test runs the real script again in this checkout and checks that it is the quick no-op the test command relies on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.ci import in_ci

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup"

# A stand-in for an interpreter: answers the script's version questions with STUB_IDENTITY, logs every `-m` command,
# and for `-m venv DIR` makes DIR/pyvenv.cfg and DIR/bin/python (a copy of itself that keeps the identity it was made
# from), as `python -m venv` would.
FAKE_PYTHON = """#!/usr/bin/env bash
made_from="$(dirname "$0")/identity"
if [ -f "$made_from" ]; then STUB_IDENTITY="$(cat "$made_from")"; fi
case "$1" in
  -c) case "$2" in *"version_info <"*) exit 0 ;; esac; echo "$STUB_IDENTITY"; exit 0 ;;
  -m) echo "$*" >>"$STUB_LOG"
      if [ "$2" = venv ]; then
          mkdir -p "$3/bin"; touch "$3/pyvenv.cfg"; cp "$0" "$3/bin/python"; echo "$STUB_IDENTITY" >"$3/bin/identity"
      fi
      exit 0 ;;
esac
exit 2
"""


class Checkout:
    """A directory with a copy of scripts/setup and a pyproject.toml, run with a stand-in interpreter."""

    def __init__(self, base: Path) -> None:
        self.root = base / "repo"
        (self.root / "scripts").mkdir(parents=True)
        shutil.copy2(SETUP, self.root / "scripts" / "setup")
        (self.root / "pyproject.toml").write_text('[project]\nname = "hoptel"\n')
        stubs = base / "bin"
        stubs.mkdir()
        for program in ("prometheus", "promtool", "valgrind", "systemctl"):  # present: no apt-get, no service stop
            self._executable(stubs / program, "#!/bin/sh\nexit 0\n")
        self.python = stubs / "python3"
        self._executable(self.python, FAKE_PYTHON)
        self.log = base / "commands.log"
        self.env = {
            **{key: value for key, value in os.environ.items() if key != "VENV"},  # .ci/run's choice is not the copy's
            "PATH": f"{stubs}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHON": str(self.python),
            "STUB_LOG": str(self.log),
            "STUB_IDENTITY": "cpython 3.11.7 /opt/python-a",
        }

    @staticmethod
    def _executable(path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o755)

    def run(self) -> subprocess.CompletedProcess[str]:
        """Run the copied scripts/setup, whatever its exit status."""
        self.log.write_text("")
        return subprocess.run(
            [str(self.root / "scripts" / "setup")],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def setup(self) -> tuple[list[str], str]:
        """Run the copied scripts/setup; the `-m` commands it ran (pip, venv) and its stderr."""
        done = self.run()
        assert done.returncode == 0, done.stderr
        return self.log.read_text().splitlines(), done.stderr


def _made_venv(commands: list[str]) -> bool:
    return any(c.startswith("-m venv ") for c in commands)


def _installed(commands: list[str]) -> bool:
    return any(c.startswith("-m pip ") and "install -e .[test]" in c for c in commands)


def test_setup_makes_venv_installs_once_and_again_only_on_change(tmp_path: Path) -> None:
    """First run: .venv made, pip upgraded, hoptel installed; again: nothing; after a change: what the change needs."""
    checkout = Checkout(tmp_path)
    venv = checkout.root / ".venv"

    commands, _ = checkout.setup()
    assert commands[0] == f"-m venv {venv}"  # made with the chosen interpreter, nothing installed into it
    assert any("install --upgrade pip" in c for c in commands[1:])
    assert _installed(commands)
    assert "pyproject=" in (venv / ".hoptel-setup").read_text()

    commands, stderr = checkout.setup()
    assert commands == [], "a second run with nothing changed must not run pip"
    assert "up to date" in stderr

    with (checkout.root / "pyproject.toml").open("a") as pyproject:
        pyproject.write("# changed\n")
    commands, _ = checkout.setup()
    assert not _made_venv(commands)
    assert _installed(commands), "a changed pyproject.toml must be installed again"
    assert checkout.setup()[0] == []

    checkout.env["STUB_IDENTITY"] = "cpython 3.12.1 /opt/python-b"  # PYTHON now names another interpreter
    commands, stderr = checkout.setup()
    assert _made_venv(commands)
    assert _installed(commands)
    assert "another Python" in stderr

    del checkout.env["PYTHON"]  # python3 (the stand-in, first on PATH) is the first interpreter again, but unchosen:
    checkout.env["STUB_IDENTITY"] = "cpython 3.11.7 /opt/python-a"
    assert checkout.setup()[0] == [], "without PYTHON a working .venv stays, whichever interpreter made it"

    (venv / "bin" / "python").unlink()  # broken
    commands, _ = checkout.setup()
    assert _made_venv(commands)
    assert _installed(commands)


def test_venv_names_an_environment_of_its_own_beside_dot_venv(tmp_path: Path) -> None:
    """VENV=.venv-3.12 makes and keeps that environment from PYTHON; .venv and its stamp stay as they were."""
    checkout = Checkout(tmp_path)
    checkout.setup()
    default_stamp = (checkout.root / ".venv" / ".hoptel-setup").read_text()

    checkout.env.update({"VENV": ".venv-3.12", "STUB_IDENTITY": "cpython 3.12.1 /opt/python-b"})
    other = checkout.root / ".venv-3.12"
    commands, stderr = checkout.setup()
    assert commands[0] == f"-m venv {other}"
    assert _installed(commands)
    assert "into .venv-3.12" in stderr
    assert f"venv={other}\npython=cpython 3.12.1 /opt/python-b\n" in (other / ".hoptel-setup").read_text()
    commands, stderr = checkout.setup()
    assert commands == []
    assert ".venv-3.12 is up to date" in stderr
    assert (checkout.root / ".venv" / ".hoptel-setup").read_text() == default_stamp

    checkout.env["VENV"] = str(other)  # the same environment named by its absolute path
    assert checkout.setup()[0] == []


def test_setup_does_not_replace_a_directory_that_is_no_environment(tmp_path: Path) -> None:
    """VENV naming a directory with files but no pyvenv.cfg stops setup; the directory is left as it was."""
    checkout = Checkout(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    checkout.env["VENV"] = str(mine)
    done = checkout.run()
    assert done.returncode != 0
    assert "not a virtual environment" in done.stderr
    assert (mine / "notes.txt").read_text() == "keep me"
    assert checkout.log.read_text() == ""


def test_setup_refuses_a_python_it_cannot_run(tmp_path: Path) -> None:
    """PYTHON naming no interpreter stops setup with a message, before anything is made."""
    checkout = Checkout(tmp_path)
    checkout.env["PYTHON"] = str(tmp_path / "no-such-python")
    done = subprocess.run(
        [str(checkout.root / "scripts" / "setup")], env=checkout.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "PYTHON" in done.stderr
    assert not (checkout.root / ".venv").exists()


def test_setup_again_in_this_checkout_is_a_quick_no_op() -> None:
    """The suite runs from an environment of this checkout (.venv, or .venv-3.X under CI), and setup skips pip there."""
    venv = Path(sys.prefix).resolve()
    if venv.parent != ROOT.resolve() or not venv.name.startswith(".venv"):
        message = f"the suite runs from {sys.prefix}, not from {ROOT}/.venv* (scripts/test and CI run it from one)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    stamp = venv / ".hoptel-setup"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + (ROOT / "setup.py").read_bytes()).hexdigest()
    if not stamp.is_file() or f"pyproject={digest}" not in stamp.read_text():
        message = "pyproject.toml or setup.py changed since scripts/setup last installed; setup would run pip now"
        if in_ci():  # CI ran scripts/setup just before the suite: a stale stamp means setup's digest changed
            pytest.fail(message)
        pytest.skip(message)
    env = {key: value for key, value in os.environ.items() if key != "PYTHON"}  # keep the environment as it is
    env["VENV"] = venv.name
    done = subprocess.run([str(SETUP)], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stderr
    assert "installing hoptel" not in done.stderr
