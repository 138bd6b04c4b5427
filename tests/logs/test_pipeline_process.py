"""The log pipeline in real processes: JSON lines on stdout, trace ids, framework noise, handlers, exit."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ScriptRunner = Callable[..., subprocess.CompletedProcess[str]]

CORRELATION_SCRIPT = """
    import json, logging, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx
    from opentelemetry.sdk.trace import TracerProvider

    from hoptel.logs import LogPipeline


    class Ok(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass


    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pipeline = LogPipeline.start(directives=sys.argv[1], log_format="json", service_name="orders")
    tracer = TracerProvider().get_tracer("script")
    log = logging.getLogger("orders.api")

    log.info("outside")
    with tracer.start_as_current_span("work") as span:
        log.info("inside", extra={"user": "ada", "attempt": 2})
        httpx.get(f"http://127.0.0.1:{server.server_port}/").raise_for_status()  # httpx logs this at INFO
        logging.getLogger("grpc._channel").info("grpc info")
        logging.getLogger("grpc._channel").warning("grpc warning")
        logging.getLogger("httpx").warning("httpx warning")
        with tracer.start_as_current_span("child") as child:
            log.warning("in child")
    log.debug("debug hidden")
    drained = pipeline.shutdown(timeout=10.0)
    server.shutdown()
    ids = {
        "trace_id": format(span.get_span_context().trace_id, "032x"),
        "span_id": format(span.get_span_context().span_id, "016x"),
        "child_span_id": format(child.get_span_context().span_id, "016x"),
        "drained": drained,
    }
    sys.stderr.write("IDS " + json.dumps(ids) + "\\n")
"""


def _ids(stderr: str) -> dict[str, Any]:
    (line,) = [line for line in stderr.splitlines() if line.startswith("IDS ")]
    result: dict[str, Any] = json.loads(line[4:])
    return result


def _json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_json_lines_carry_the_ids_of_the_current_span(run_script: ScriptRunner) -> None:
    """Every stdout line is JSON; records inside a span carry its ids, records outside carry none."""
    done = run_script(CORRELATION_SCRIPT, "info,grpc=warning,httpx=warning")
    ids = _ids(done.stderr)
    assert ids["drained"] is True
    by_message = {line["message"]: line for line in _json_lines(done.stdout)}
    outside, inside, child = by_message["outside"], by_message["inside"], by_message["in child"]
    assert "trace_id" not in outside
    assert "span_id" not in outside
    assert (inside["trace_id"], inside["span_id"]) == (ids["trace_id"], ids["span_id"])
    assert (child["trace_id"], child["span_id"]) == (ids["trace_id"], ids["child_span_id"])
    assert inside["user"] == "ada"
    assert inside["attempt"] == 2
    assert inside["service.name"] == "orders"
    assert inside["logger"] == "orders.api"
    assert child["level"] == "WARNING"
    assert "debug hidden" not in by_message


def test_framework_info_is_kept_out_and_warnings_get_through(run_script: ScriptRunner) -> None:
    """With grpc=warning,httpx=warning their info records are absent and their warnings present."""
    done = run_script(CORRELATION_SCRIPT, "info,grpc=warning,httpx=warning")
    messages = [line["message"] for line in _json_lines(done.stdout)]
    assert not any(message.startswith("HTTP Request:") for message in messages)
    assert "grpc info" not in messages
    assert "grpc warning" in messages
    assert "httpx warning" in messages


def test_without_framework_directives_their_info_records_appear(run_script: ScriptRunner) -> None:
    """Control for the test above: with plain 'info', httpx's real request log and grpc info are written."""
    done = run_script(CORRELATION_SCRIPT, "info")
    lines = _json_lines(done.stdout)
    requests = [line for line in lines if line["message"].startswith("HTTP Request: GET")]
    assert len(requests) == 1
    assert requests[0]["logger"] == "httpx"
    assert requests[0]["trace_id"] == _ids(done.stderr)["trace_id"]
    assert "grpc info" in [line["message"] for line in lines]


HANDLERS_SCRIPT = """
    import logging, sys
    from hoptel.logs import LogPipeline

    logging.basicConfig(level=logging.INFO, format="BASIC %(message)s")  # a StreamHandler on stderr
    file_handler = logging.FileHandler(sys.argv[1])
    file_handler.setFormatter(logging.Formatter("FILE %(message)s"))
    logging.getLogger().addHandler(file_handler)

    log = logging.getLogger("app")
    pipeline = LogPipeline.start(directives="warning", keep_handlers=sys.argv[2] == "keep")
    log.info("during info")
    log.warning("during warning")
    pipeline.shutdown()
    log.info("after")
    file_handler.close()
"""


def test_console_handlers_are_replaced_and_restored_file_handlers_kept(
    run_script: ScriptRunner, tmp_path: Path
) -> None:
    """BasicConfig's stderr handler is taken out while the pipeline runs and put back after; files keep logging."""
    log_file = tmp_path / "app.log"
    done = run_script(HANDLERS_SCRIPT, str(log_file), "replace")
    assert [line["message"] for line in _json_lines(done.stdout)] == ["during warning"]
    assert done.stderr.splitlines() == ["BASIC after"]  # basicConfig's level (INFO) is back too
    assert log_file.read_text().splitlines() == ["FILE during warning", "FILE after"]


def test_keep_handlers_leaves_the_application_handlers_in_place(run_script: ScriptRunner, tmp_path: Path) -> None:
    """keep_handlers=True opts out: the application's console handler keeps printing alongside the pipeline."""
    done = run_script(HANDLERS_SCRIPT, str(tmp_path / "app.log"), "keep")
    assert [line["message"] for line in _json_lines(done.stdout)] == ["during warning"]
    assert done.stderr.splitlines() == ["BASIC during warning", "BASIC after"]


BULK_SCRIPT = """
    import logging, sys
    from hoptel.logs import LogPipeline

    pipeline = LogPipeline.start(directives="info", queue_size=10_000)
    log = logging.getLogger("bulk")
    for n in range(10_000):
        log.info("record %d", n)
    if sys.argv[1] == "shutdown":
        assert pipeline.shutdown(timeout=30.0)
        assert pipeline.dropped == 0
    # else: no shutdown call; the pipeline's exit hook drains the queue
"""


@pytest.mark.parametrize("ending", ["shutdown", "exit"])
def test_ten_thousand_records_are_all_on_stdout(run_script: ScriptRunner, ending: str) -> None:
    """10,000 records logged back to back all reach stdout, after shutdown() or at interpreter exit."""
    done = run_script(BULK_SCRIPT, ending)
    messages = [line["message"] for line in _json_lines(done.stdout)]
    assert messages == [f"record {n}" for n in range(10_000)]


FORK_SCRIPT = """
    import logging, os
    from hoptel.logs import LogPipeline

    pipeline = LogPipeline.start(directives="info")
    log = logging.getLogger("forking")
    log.info("parent before fork")
    assert pipeline.flush(timeout=10.0)
    pid = os.fork()
    if pid == 0:
        log.info("child %d", os.getpid())
        pipeline.shutdown(timeout=10.0)
        os._exit(0)
    os.waitpid(pid, 0)
    log.info("parent after fork")
    pipeline.shutdown(timeout=10.0)
    print('{"message": "child was %d"}' % pid)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_its_own_writer(run_script: ScriptRunner) -> None:
    """After os.fork() the child's records are written by a worker of its own; the parent keeps writing."""
    done = run_script(FORK_SCRIPT)
    messages = [line["message"] for line in _json_lines(done.stdout)]
    child_pid = messages[-1].removeprefix("child was ")
    assert messages[:-1] == ["parent before fork", f"child {child_pid}", "parent after fork"]
