"""LogPipeline in this process: runtime filter changes, validation, what start() changes and shutdown() undoes."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hoptel.logs import LogPipeline
from hoptel.logs.line_guard import LineGuard

PipelineFactory = Callable[..., LogPipeline]


def _messages(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


@pytest.fixture
def no_grpc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither GRPC_VERBOSITY nor GRPC_TRACE is set (restored after the test)."""
    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)
    monkeypatch.delenv("GRPC_TRACE", raising=False)


@pytest.fixture
def record_count() -> Iterator[Callable[[], int]]:
    """Counts LogRecords created in this process while the test runs."""
    created = 0
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        nonlocal created
        created += 1
        return factory(*args, **kwargs)

    logging.setLogRecordFactory(counting)
    yield lambda: created
    logging.setLogRecordFactory(factory)


def test_filter_change_at_run_time_takes_effect(start_pipeline: PipelineFactory) -> None:
    """set_filter() switches levels immediately: debug and grpc info appear after, not before."""
    stream = io.StringIO()
    pipeline = start_pipeline(stream=stream, directives="info,grpc=warning")
    app, grpc_log = logging.getLogger("orders.svc"), logging.getLogger("grpc._server")
    app.debug("debug before")
    grpc_log.info("grpc info before")
    directives = pipeline.set_filter("debug,grpc=info")
    app.debug("debug after")
    grpc_log.info("grpc info after")
    grpc_log.debug("grpc debug after")
    assert pipeline.shutdown()
    assert _messages(stream) == ["debug after", "grpc info after"]
    assert str(directives) == str(pipeline.directives) == "debug,grpc=info"


def test_bad_filter_raises_and_leaves_levels_alone(start_pipeline: PipelineFactory) -> None:
    """A malformed set_filter() raises naming the part, and the directives in force stay."""
    pipeline = start_pipeline(directives="info,grpc=warning")
    with pytest.raises(ValueError, match=r"bad directive 'grpc=loud'"):
        pipeline.set_filter("debug,grpc=loud")
    assert str(pipeline.directives) == "info,grpc=warning"
    assert logging.getLogger().level == logging.INFO
    assert logging.getLogger("grpc").level == logging.WARNING


def test_suppressed_call_builds_no_record(start_pipeline: PipelineFactory, record_count: Callable[[], int]) -> None:
    """A call below its logger's level is stopped by the level check: no LogRecord is created."""
    start_pipeline(directives="info,grpc=warning")
    logging.getLogger("grpc._channel").info("noise %s", "x")
    logging.getLogger("orders").debug("noise")
    assert record_count() == 0
    logging.getLogger("orders").info("kept")
    assert record_count() == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"directives": "info,x=y"}, r"^HOPTEL_LOG='info,x=y': bad directive 'x=y'"),
        ({"log_format": "xml"}, r"^HOPTEL_LOG_FORMAT='xml'"),
        ({"queue_size": 0}, r"^HOPTEL_LOG_QUEUE_SIZE=0"),
    ],
)
def test_bad_arguments_raise_before_anything_changes(kwargs: dict[str, Any], message: str) -> None:
    """start() validates first: a bad argument raises a ValueError naming the variable and installs nothing."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with pytest.raises(ValueError, match=message):
        LogPipeline.start(stream=io.StringIO(), **kwargs)
    assert root.handlers == handlers
    assert root.level == level


def test_shutdown_undoes_what_start_changed(start_pipeline: PipelineFactory, no_grpc_env: None) -> None:
    """After shutdown the handler is gone, levels and GRPC_VERBOSITY are as before; a second call is harmless."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    httpx_logger = logging.getLogger("httpx")
    httpx_logger.setLevel(logging.ERROR)
    try:
        pipeline = start_pipeline(directives="debug,httpx=warning")
        assert pipeline.handler in root.handlers
        assert root.level == logging.DEBUG
        assert httpx_logger.level == logging.WARNING
        assert os.environ["GRPC_VERBOSITY"] == "ERROR"
        assert pipeline.grpc_verbosity.set_by_hoptel
        assert pipeline.shutdown()
        assert pipeline.shutdown()
        assert root.handlers == handlers
        assert root.level == level
        assert httpx_logger.level == logging.ERROR
        assert "GRPC_VERBOSITY" not in os.environ
        with pytest.raises(RuntimeError, match="shut down"):
            pipeline.set_filter("info")
    finally:
        httpx_logger.setLevel(logging.NOTSET)


def test_user_grpc_verbosity_is_left_alone(start_pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the user set GRPC_VERBOSITY, the pipeline neither changes nor removes it."""
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")
    pipeline = start_pipeline()
    assert os.environ["GRPC_VERBOSITY"] == "DEBUG"
    assert not pipeline.grpc_verbosity.set_by_hoptel
    assert pipeline.shutdown()
    assert os.environ["GRPC_VERBOSITY"] == "DEBUG"


def test_starting_a_second_pipeline_shuts_down_the_first(start_pipeline: PipelineFactory) -> None:
    """Only one pipeline is live: the newer one replaces the older, so nothing is written twice."""
    first_stream, second_stream = io.StringIO(), io.StringIO()
    first = start_pipeline(stream=first_stream, directives="info")
    logging.getLogger("orders").info("one")
    second = start_pipeline(stream=second_stream, directives="info")
    logging.getLogger("orders").info("two")
    assert first.closed
    assert [h for h in logging.getLogger().handlers if h in (first.handler, second.handler)] == [second.handler]
    assert second.shutdown()
    assert _messages(first_stream) == ["one"]
    assert _messages(second_stream) == ["two"]


def test_text_format_writes_readable_lines(start_pipeline: PipelineFactory) -> None:
    """log_format='text' writes one readable line per record."""
    stream = io.StringIO()
    pipeline = start_pipeline(stream=stream, log_format="text", directives="info")
    logging.getLogger("orders.db").warning("slow query", extra={"ms": 812})
    assert pipeline.shutdown()
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(" WARNING  [orders] orders.db: slow query ms=812")


def test_flush_writes_everything_queued_so_far(start_pipeline: PipelineFactory) -> None:
    """flush() returns once earlier records are on the stream, without stopping the pipeline."""
    stream = io.StringIO()
    pipeline = start_pipeline(stream=stream, directives="info")
    logging.getLogger("orders").info("before flush")
    assert pipeline.flush(timeout=10.0)
    assert _messages(stream) == ["before flush"]
    logging.getLogger("orders").info("after flush")
    assert pipeline.shutdown()
    assert _messages(stream) == ["before flush", "after flush"]


def test_on_sys_stdout_under_pytests_capture_lines_are_captured_and_stdout_put_back(
    start_pipeline: PipelineFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """With stream=None the pipeline guards pytest's captured stdout, and shutdown() puts pytest's stream back."""
    captured = sys.stdout
    pipeline = start_pipeline(stream=None, directives="info")
    assert isinstance(sys.stdout, LineGuard)
    print("app", "line")
    logging.getLogger("orders.svc").info("logged")
    assert pipeline.shutdown(timeout=10.0)
    assert sys.stdout is captured
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "app line"
    assert json.loads(out[1])["message"] == "logged"
