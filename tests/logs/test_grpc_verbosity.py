"""GRPC_VERBOSITY: set to ERROR unless the user chose, and the moment gRPC core reads it (at import grpc)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from hoptel.logs.grpc_verbosity import GrpcVerbosity, quiet_grpc_core, undo_grpc_verbosity

ScriptRunner = Callable[..., subprocess.CompletedProcess[str]]


def test_sets_error_when_the_user_set_nothing() -> None:
    """With neither variable set, GRPC_VERBOSITY becomes ERROR, and undo removes it again."""
    environ: dict[str, str] = {}
    change = quiet_grpc_core(environ)
    assert environ == {"GRPC_VERBOSITY": "ERROR"}
    assert change.set_by_hoptel
    undo_grpc_verbosity(change, environ)
    assert environ == {}


@pytest.mark.parametrize("variable", ["GRPC_VERBOSITY", "GRPC_TRACE"])
def test_leaves_the_environment_alone_when_the_user_chose(variable: str) -> None:
    """A user-set GRPC_VERBOSITY or GRPC_TRACE means hoptel changes nothing, and undo removes nothing."""
    environ = {variable: "debug"}
    change = quiet_grpc_core(environ)
    assert change == GrpcVerbosity(set_by_hoptel=False, effective=False)
    undo_grpc_verbosity(change, environ)
    assert environ == {variable: "debug"}


def test_undo_keeps_a_value_changed_since() -> None:
    """If someone changed GRPC_VERBOSITY after hoptel set it, undo leaves their value."""
    environ: dict[str, str] = {}
    change = quiet_grpc_core(environ)
    environ["GRPC_VERBOSITY"] = "INFO"
    undo_grpc_verbosity(change, environ)
    assert environ == {"GRPC_VERBOSITY": "INFO"}


EFFECT_SCRIPT = """
    import sys
    from hoptel.logs.grpc_verbosity import quiet_grpc_core

    if sys.argv[1] == "before-import":
        change = quiet_grpc_core()
        import grpc
    else:
        import grpc
        change = quiet_grpc_core()
    print(change.set_by_hoptel, change.effective)
"""


@pytest.mark.parametrize(("moment", "effective"), [("before-import", True), ("after-import", False)])
def test_effective_reports_whether_grpc_core_was_loaded(run_script: ScriptRunner, moment: str, effective: bool) -> None:
    """quiet_grpc_core() says it can still take effect only when grpc was not imported yet."""
    done = run_script(EFFECT_SCRIPT, moment)
    assert done.stdout.split() == ["True", str(effective)]


BOUNDARY_SCRIPT = """
    import os, sys
    from concurrent import futures

    if sys.argv[1] == "before-import":
        os.environ["GRPC_VERBOSITY"] = "DEBUG"
    import grpc

    if sys.argv[1] == "after-import":
        os.environ["GRPC_VERBOSITY"] = "DEBUG"  # before any channel or server exists
    server = grpc.server(futures.ThreadPoolExecutor(1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
    server.stop(None).wait()
"""


@pytest.mark.parametrize(("moment", "noticed"), [("before-import", True), ("after-import", False)])
def test_grpc_core_reads_verbosity_once_at_import(run_script: ScriptRunner, moment: str, noticed: bool) -> None:
    """Pins the documented boundary: GRPC_VERBOSITY set after `import grpc` is ignored, even before any channel.

    gRPC core announces DEBUG verbosity on stderr when it reads it; if a grpc upgrade moves the moment it reads
    the variable, this fails and the documentation in hoptel/logs/grpc_verbosity.py must change with it.
    """
    done = run_script(BOUNDARY_SCRIPT, moment)
    assert ("Log level DEBUG is not suitable for production" in done.stderr) is noticed
