"""Server logging under the real servers: the app's and the server's lines are hoptel's JSON, with trace ids.

Each server is started the way users start it, with ``hoptel.setup()`` in the app module (``logging_app``):
``uvicorn logging_app:app``, ``python logging_run.py`` (``uvicorn.run(app)`` after ``setup()``, uvicorn's
default log config) and ``gunicorn -k uvicorn.workers.UvicornWorker --access-logfile -``; and gunicorn's gthread
worker for ``gunicorn.access``. Spans go to a real OTLP receiver, so the ids on the access line are compared with
the SERVER span the request made.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from logging_support import LoggedServer, wait_for
from support.ports import free_port
from support.programs import installed_program

from hoptel.receiver import OTLPReceiver

ServerStarter = Callable[[list[str], int], LoggedServer]
APP_PRINTS = {"APP print /ready", "APP print /hello"}


def _program(name: str) -> str:
    return installed_program(name)


LAUNCHES: dict[str, Callable[[int], list[str]]] = {
    "uvicorn": lambda port: [_program("uvicorn"), "logging_app:app", "--host", "127.0.0.1", "--port", str(port)],
    "uvicorn.run": lambda port: [sys.executable, "logging_run.py", str(port)],
    "gunicorn-uvicorn-worker": lambda port: [
        _program("gunicorn"),
        "-k",
        "uvicorn.workers.UvicornWorker",
        "--access-logfile",
        "-",
        "-w",
        "1",
        "-b",
        f"127.0.0.1:{port}",
        "logging_app:app",
    ],
    # The app module (and setup()) runs in the master, before the worker is built there and forked.
    "gunicorn-uvicorn-worker-preload": lambda port: [
        _program("gunicorn"),
        "--preload",
        "-k",
        "uvicorn.workers.UvicornWorker",
        "--access-logfile",
        "-",
        "-w",
        "1",
        "-b",
        f"127.0.0.1:{port}",
        "logging_app:app",
    ],
}


@pytest.fixture
def server_env(receiver: OTLPReceiver) -> dict[str, str]:
    """The environment of a server under test: spans to the test's receiver quickly, no metrics endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOPTEL_", "GRPC_"))}
    env.update(
        {
            "OTEL_SERVICE_NAME": "logging-app",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "HOPTEL_METRICS_ADDR": "off",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def start_logged_server(tmp_path: Path, server_env: dict[str, str]) -> Iterator[ServerStarter]:
    """``start_logged_server(args, port)``: start a server; each is stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[LoggedServer] = []

    def start(args: list[str], port: int) -> LoggedServer:
        directory = tmp_path / f"server-{len(started)}"
        directory.mkdir()
        server = LoggedServer.start(args, server_env, port, directory)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _request(server: LoggedServer, path: str) -> tuple[str, str]:
    """GET ``path`` with a sampled traceparent; returns (trace id, parent span id) sent."""
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    response = httpx.get(f"{server.url}{path}", headers={"traceparent": f"00-{trace_id}-{parent}-01"}, timeout=30.0)
    assert response.text == "ok"
    return trace_id, parent


@pytest.mark.parametrize("launch", list(LAUNCHES))
def test_app_and_server_lines_are_json_with_the_server_spans_ids(
    launch: str, start_logged_server: ServerStarter, receiver: OTLPReceiver
) -> None:
    """The app's lines and uvicorn's (error and access) come out as JSON; the access line has the SERVER span's ids."""
    port = free_port()
    server = start_logged_server(LAUNCHES[launch](port), port)
    server.wait_ready()
    trace_id, parent = _request(server, "/hello")
    (span,) = receiver.wait_for_spans(
        1, timeout=60.0, predicate=lambda s: s.trace_id == trace_id and s.kind == "SERVER"
    )
    access = server.wait_line(
        lambda line: line["logger"] == "uvicorn.access" and "/hello" in line["message"], "the access line of /hello"
    )
    handled = server.wait_line(
        lambda line: line["logger"] == "logging_app" and line["message"] == "handling /hello", "the app's line"
    )
    through_gunicorn = server.wait_line(
        lambda line: line["logger"] == "gunicorn.error" and line["message"].endswith("/hello"), "a gunicorn.error line"
    )
    startup = server.wait_line(lambda line: line["message"] == "Application startup complete.", "uvicorn's startup")
    server.stop()

    assert span.parent_span_id == parent
    for line in (access, handled, through_gunicorn):
        assert (line.get("trace_id"), line.get("span_id")) == (trace_id, span.span_id), line
        assert line["service.name"] == "logging-app"
    assert access["message"].endswith('"GET /hello HTTP/1.1" 200')
    assert startup["logger"] == "uvicorn.error"
    messages = {(line["logger"], line["message"]) for line in server.json_lines()}
    assert ("logging_app", "app started") in messages  # logged after uvicorn configured logging: not lost
    if launch.startswith("uvicorn"):
        assert any(logger == "uvicorn.error" and m.startswith("Uvicorn running on") for logger, m in messages)

    stdout = server.stdout()
    assert "color_message" not in stdout
    for text in stdout.splitlines():  # each line whole: JSON, or one of the app's own print() lines
        if text not in APP_PRINTS:
            assert isinstance(json.loads(text), dict), text
    assert "APP print /hello" in stdout.splitlines()
    stderr = server.stderr()
    assert "Application startup complete" not in stderr  # uvicorn's own handlers did not write it
    assert "GET /hello" not in stderr


def test_gunicorn_access_lines_of_a_gthread_worker_are_json(
    start_logged_server: ServerStarter,
) -> None:
    """The access logger of gunicorn (``--access-logfile -``) in a gthread worker writes through hoptel too."""
    port = free_port()
    args = [_program("gunicorn"), "-k", "gthread", "--threads", "2", "--access-logfile", "-"]
    server = start_logged_server([*args, "-w", "1", "-b", f"127.0.0.1:{port}", "logging_app:wsgi_app"], port)
    server.wait_ready()
    _request(server, "/hello")
    access = server.wait_line(
        lambda line: line["logger"] == "gunicorn.access" and "GET /hello" in line["message"], "gunicorn's access line"
    )
    server.wait_line(lambda line: line["message"] == "handling /hello", "the app's line")
    server.stop()
    assert access["service.name"] == "logging-app"
    for text in server.stdout().splitlines():
        assert isinstance(json.loads(text), dict), text
    assert "GET /hello" not in server.stderr()


def test_an_app_taking_the_console_over_after_setup_is_reported_once_on_stderr(
    start_logged_server: ServerStarter,
) -> None:
    """A basicConfig(force=True) in a running uvicorn app: one loud hoptel line on stderr, then the app's format."""
    port = free_port()
    server = start_logged_server(LAUNCHES["uvicorn"](port), port)
    server.wait_ready()
    _request(server, "/reconfigure")
    _request(server, "/hello")

    def reported() -> str | None:
        stderr = server.stderr()
        return stderr if "APP-CONFIG logging_app handling /hello" in stderr else None

    stderr = wait_for(reported, "the app's own lines on stderr", server.details)
    server.stop()
    warnings = [line for line in stderr.splitlines() if line.startswith("hoptel: WARNING: logging was reconfigured")]
    assert len(warnings) == 1
    assert "APP-CONFIG logging_app handling /reconfigure" in stderr  # the record that revealed it is not lost
    assert "handling /reconfigure" not in server.stdout()
