"""Logging reconfigured after the pipeline started, in real processes: nothing is lost without a word."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

ScriptRunner = Callable[..., subprocess.CompletedProcess[str]]

UVICORN_CONFIG_SCRIPT = """
    import logging, logging.config, sys
    from uvicorn.config import LOGGING_CONFIG
    from hoptel.logs import LogPipeline

    pipeline = LogPipeline.start(directives="info", service_name="shop")
    app = logging.getLogger("shop")
    app.info("before")
    for round in range(int(sys.argv[1])):
        logging.config.dictConfig(LOGGING_CONFIG)  # what uvicorn.run() does
        app.info("app after config %d", round)
        logging.getLogger("uvicorn.error").info(
            "Uvicorn running on %s", "http://x", extra={"color_message": "Uvicorn running on \\x1b[1m%s\\x1b[0m"}
        )
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/", "1.1", 200)
    pipeline.shutdown()
    logging.getLogger("uvicorn.error").info("after shutdown")  # uvicorn's own handler again
"""


def _json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_uvicorn_logging_config_after_start_keeps_app_lines_and_adopts_uvicorns(run_script: ScriptRunner) -> None:
    """After uvicorn's dictConfig the app's lines still arrive, uvicorn's are JSON too, without color_message."""
    done = run_script(UVICORN_CONFIG_SCRIPT, "1")
    lines = _json_lines(done.stdout)
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("shop", "before"),
        ("shop", "app after config 0"),
        ("uvicorn.error", "Uvicorn running on http://x"),
        ("uvicorn.access", '1.2.3.4:5 - "GET / HTTP/1.1" 200'),
    ]
    assert not any("color_message" in line for line in lines)
    assert done.stderr.splitlines() == ["INFO:     after shutdown"]


def test_every_later_reconfiguration_is_handled(run_script: ScriptRunner) -> None:
    """A second and a third dictConfig are noticed like the first one."""
    done = run_script(UVICORN_CONFIG_SCRIPT, "3")
    messages = [line["message"] for line in _json_lines(done.stdout)]
    for round in range(3):
        assert f"app after config {round}" in messages
    assert messages.count("Uvicorn running on http://x") == 3
    assert "hoptel" not in done.stderr


FORCE_SCRIPT = """
    import logging, sys
    from hoptel.logs import LogPipeline

    pipeline = LogPipeline.start(directives="info", service_name="shop")
    app = logging.getLogger("shop")
    app.info("before")
    logging.basicConfig(force=True, level=logging.INFO, format="APP %(name)s %(message)s")
    app.info("after")
    logging.basicConfig(force=True, level=logging.INFO, format="APP %(name)s %(message)s")
    app.warning("again")
    sys.stderr.write(f"stepped_aside={pipeline.stepped_aside}\\n")
    pipeline.shutdown()
"""


def test_an_app_console_handler_installed_later_makes_hoptel_step_aside_loudly(run_script: ScriptRunner) -> None:
    """basicConfig(force=True) after start: one loud message on stderr, then the app's own format; none lost."""
    done = run_script(FORCE_SCRIPT)
    assert [line["message"] for line in _json_lines(done.stdout)] == ["before"]
    errors = done.stderr.splitlines()
    warnings = [line for line in errors if line.startswith("hoptel: WARNING: logging was reconfigured")]
    assert len(warnings) == 1
    assert "hoptel's log handler was removed" in warnings[0]
    assert [line for line in errors if line.startswith("APP ")] == ["APP shop after", "APP shop again"]
    assert "stepped_aside=True" in errors
    assert errors.index(warnings[0]) < errors.index("APP shop after")


FILE_SCRIPT = """
    import logging, logging.config, sys
    from hoptel.logs import LogPipeline

    pipeline = LogPipeline.start(directives="info", service_name="shop")
    app = logging.getLogger("shop")
    app.info("before")
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "FILE %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": sys.argv[1], "formatter": "plain"}},
        "root": {"handlers": ["file"], "level": "INFO"},
    })
    app.info("after")
    sys.stderr.write(f"stepped_aside={pipeline.stepped_aside}\\n")
    pipeline.shutdown()
    logging.shutdown()
"""


def test_a_root_without_console_handler_gets_hoptels_handler_back(run_script: ScriptRunner, tmp_path: Path) -> None:
    """A dictConfig replacing the root's handlers with a file: hoptel's handler is put back beside it."""
    log_file = tmp_path / "app.log"
    done = run_script(FILE_SCRIPT, str(log_file))
    assert [line["message"] for line in _json_lines(done.stdout)] == ["before", "after"]
    assert log_file.read_text().splitlines() == ["FILE after"]
    assert done.stderr.splitlines() == ["stepped_aside=False"]


SETUP_SCRIPT = """
    import logging, logging.config
    import hoptel, uvicorn.config

    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)  # `uvicorn app:app` configures before importing
    telemetry = hoptel.setup("shop", traces_exporter="none", metrics_addr="off")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1, extra={"color_message": "x"})
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/", "1.1", 200)
    telemetry.shutdown()
"""


def test_setup_after_uvicorns_config_adopts_its_loggers(run_script: ScriptRunner) -> None:
    """hoptel.setup() in an app module that uvicorn imports after configuring logging takes uvicorn's lines over."""
    done = run_script(SETUP_SCRIPT)
    lines = _json_lines(done.stdout)
    assert [(line["logger"], line["message"], line["service.name"]) for line in lines] == [
        ("uvicorn.error", "Started server process [1]", "shop"),
        ("uvicorn.access", '1.2.3.4:5 - "GET / HTTP/1.1" 200', "shop"),
    ]
    assert not any("color_message" in line for line in lines)
    assert done.stderr == ""


FORK_SCRIPT = """
    import logging, os, sys, warnings
    from hoptel.logs import LogPipeline

    # Python 3.12+ warns about any fork of a process that has threads (the pipeline's); here the fork is the point.
    warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
    pipeline = LogPipeline.start(directives="info", service_name="shop")
    pid = os.fork()
    if pid == 0:
        # What gunicorn's UvicornWorker does to uvicorn's loggers: plain assignment, nothing is closed.
        access = logging.getLogger("uvicorn.access")
        access.handlers = [logging.StreamHandler(sys.stderr)]
        access.propagate = False
        access.info("child access line")
        pipeline.shutdown()
        os._exit(0)
    os.waitpid(pid, 0)
    pipeline.shutdown()
"""


def test_a_forked_child_adopts_server_loggers_set_up_after_the_fork(run_script: ScriptRunner) -> None:
    """In a forked child, server loggers given console handlers by assignment are still routed into hoptel."""
    done = run_script(FORK_SCRIPT)
    assert [(line["logger"], line["message"]) for line in _json_lines(done.stdout)] == [
        ("uvicorn.access", "child access line")
    ]
    assert done.stderr == ""


LEVELS_SCRIPT = """
    import logging, logging.config
    from uvicorn.config import LOGGING_CONFIG
    from hoptel.logs import LogPipeline

    pipeline = LogPipeline.start(directives="info,uvicorn.access=warning", service_name="shop")
    logging.config.dictConfig(LOGGING_CONFIG)  # sets uvicorn.access to INFO
    # The first record after a reconfiguration was level-checked before hoptel reacted: let it be another one.
    logging.getLogger("uvicorn.error").info("first after the config")
    logging.getLogger("uvicorn.access").info("access info")
    logging.getLogger("uvicorn.access").warning("access warning")
    logging.getLogger("uvicorn.error").info("error info")
    pipeline.shutdown()
    assert logging.getLogger("uvicorn.access").level == logging.INFO  # uvicorn's level is back after shutdown
"""


def test_per_logger_directives_win_over_a_later_configurations_levels(run_script: ScriptRunner) -> None:
    """HOPTEL_LOG's uvicorn.access=warning still holds after uvicorn's config set that logger to INFO."""
    done = run_script(LEVELS_SCRIPT)
    messages = [line["message"] for line in _json_lines(done.stdout)]
    assert messages == ["first after the config", "access warning", "error info"]


KEEP_SCRIPT = """
    import logging, logging.config
    from uvicorn.config import LOGGING_CONFIG
    from hoptel.logs import LogPipeline

    pipeline = LogPipeline.start(directives="info", service_name="shop", keep_handlers=True)
    logging.config.dictConfig(LOGGING_CONFIG)
    logging.getLogger("uvicorn.error").info("error info")
    logging.getLogger("shop").info("app info")
    pipeline.shutdown()
"""


def test_keep_handlers_leaves_the_server_loggers_alone(run_script: ScriptRunner) -> None:
    """With keep_handlers=True uvicorn keeps writing its own lines; the app's still reach hoptel."""
    done = run_script(KEEP_SCRIPT)
    assert [line["message"] for line in _json_lines(done.stdout)] == ["app info"]
    assert done.stderr.splitlines() == ["INFO:     error info"]
