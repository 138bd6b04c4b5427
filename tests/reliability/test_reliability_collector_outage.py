"""Exporter outages are quiet and visible: counted per attempt at once, one WARNING when they start, one INFO after.

A child process (``outage_child.py``) exports spans, log records and metrics to a real OTLPReceiver over OTLP/gRPC or
OTLP/HTTP. The receiver is stopped and started again on the same ports, or refuses every export for a while. The
test reads the child's ``/metrics`` while it runs and its whole stdout and stderr afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hoptel.export_outage import EXPORTER_LOGGERS, OutageTracker, install_attempt_lines_filter
from hoptel.metrics import CounterChild
from hoptel.receiver import OTLPReceiver

CHILD = Path(__file__).with_name("outage_child.py")
TIMEOUT_S = 60.0
POLL_S = 0.05
SIGNALS = ("traces", "logs", "metrics")
# OpenTelemetry's own per-attempt lines, which hoptel's two lines replace.
ATTEMPT_LINE = re.compile(r"Transient error|Failed to export|Shutdown in progress|Exporter already shutdown")


def _wait(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")


def _metric(url: str, name: str, labels: str = "") -> float:
    """One sample of the child's /metrics (0 when the series does not exist yet)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name}{labels} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _attempt_failures(url: str, signal: str) -> float:
    return _metric(url, "hoptel_export_attempt_failures_total", f'{{signal="{signal}"}}')


class Child:
    """The exporting child process and its control directory."""

    def __init__(self, protocol: str, endpoint: str, control: Path) -> None:
        self.control = control
        self.stdout = control / "stdout"
        self.stderr = control / "stderr"
        env = {**os.environ, "OTEL_BLRP_SCHEDULE_DELAY": "100"}
        env.pop("OTEL_EXPORTER_OTLP_TIMEOUT", None)  # the default 10 s retry budget: attempts fail long before it
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(CHILD), protocol, endpoint, str(control)], stdout=out, stderr=err, env=env
            )
        url_file = control / "url"
        self.metrics_url = _wait(lambda: url_file.exists() and url_file.read_text(), "the child's metrics URL")

    def lines(self) -> list[dict[str, Any]]:
        """Every whole stdout line, parsed: each must be one of hoptel's JSON lines.

        While the child runs, the file's last line may be half written (a reader can come between the two parts of
        one buffered write); it is left for the next read. Once the child has exited, every line must be whole.
        """
        text = self.stdout.read_text()
        whole, _, partial = text.rpartition("\n")
        if self.process.poll() is not None:
            assert partial == "", f"the child's stdout ends in a cut line: {partial!r}"
        return [json.loads(line) for line in whole.splitlines()]

    def outage_lines(self, level: str, signal: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line["logger"] == "hoptel.export" and line["level"] == level and line.get("otlp.signal") == signal
        ]

    def stop(self) -> int:
        (self.control / "stop").touch()
        return self.process.wait(timeout=TIMEOUT_S)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=TIMEOUT_S)


@pytest.fixture
def child(receiver: OTLPReceiver, protocol: str, tmp_path: Path) -> Iterator[Child]:
    """A child exporting to ``receiver`` over ``protocol``, already exporting successfully."""
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    started = Child(protocol, endpoint, tmp_path)
    try:
        receiver.wait_for_spans(1, timeout=TIMEOUT_S)
        receiver.wait_for_logs(1, timeout=TIMEOUT_S)
        receiver.wait_for_metrics(1, timeout=TIMEOUT_S)
        yield started
    finally:
        started.kill()


def _outage(receiver: OTLPReceiver, child: Child, begin: Callable[[], None], end: Callable[[], None]) -> None:
    """Run an outage from ``begin()`` to ``end()`` and check what the child counted and wrote."""
    begin()
    # The first failed attempt is counted at once: well before the exporter's 10 s retry budget is spent, when
    # hoptel_export_failures_total (one per export that failed after its retries) still reads 0.
    _wait(lambda: _attempt_failures(child.metrics_url, "traces") >= 1, "a counted failed span export attempt")
    assert _metric(child.metrics_url, "hoptel_export_failures_total") == 0
    # The same for metrics: its first failed attempt is counted before a push has failed for good.
    _wait(lambda: _attempt_failures(child.metrics_url, "metrics") >= 1, "a counted failed metric export attempt")
    assert _metric(child.metrics_url, "hoptel_metric_export_failures_total") == 0
    # Several retries of every signal, each counted, while the child writes exactly one WARNING per signal.
    for signal in SIGNALS:
        _wait(
            lambda signal=signal: _attempt_failures(child.metrics_url, signal) >= 3, f"three failed {signal} attempts"
        )
    for signal in SIGNALS:
        _wait(lambda signal=signal: child.outage_lines("WARNING", signal), f"the {signal} outage WARNING")
    receiver.clear()
    end()
    receiver.wait_for_spans(1, timeout=TIMEOUT_S)
    receiver.wait_for_logs(1, timeout=TIMEOUT_S)
    receiver.wait_for_metrics(1, timeout=TIMEOUT_S)
    for signal in SIGNALS:
        _wait(lambda signal=signal: child.outage_lines("INFO", signal), f"the {signal} recovery INFO")
    failed_attempts = {signal: _attempt_failures(child.metrics_url, signal) for signal in SIGNALS}
    assert child.stop() == 0

    assert child.stderr.read_text() == ""  # no plain-text line beside the JSON ones
    lines = child.lines()  # and every stdout line is JSON (json.loads raises otherwise)
    assert not [line for line in lines if ATTEMPT_LINE.search(line["message"])]
    assert not [line for line in lines if line["logger"].startswith("opentelemetry") and line["level"] != "INFO"]
    for signal in SIGNALS:
        (warning,) = child.outage_lines("WARNING", signal)
        (info,) = child.outage_lines("INFO", signal)
        assert "is failing" in warning["message"]
        assert "works again" in info["message"]
        assert 1 <= info["failed_attempts"] <= failed_attempts[signal]
        assert info["dropped"] >= 0
        assert info["otlp.endpoint"] == warning["otlp.endpoint"]


def test_collector_stopped_then_started(receiver: OTLPReceiver, child: Child) -> None:
    """Collector stopped, then started on the same ports: counted at once, one WARNING and one INFO per signal."""
    _outage(receiver, child, receiver.stop, receiver.start)


def test_collector_refusing_then_accepting(receiver: OTLPReceiver, child: Child) -> None:
    """Collector refusing (UNAVAILABLE / 503), then accepting: the same one WARNING and one INFO per signal."""
    _outage(receiver, child, lambda: receiver.fail_with("unavailable"), lambda: receiver.fail_with(None))


def test_shutdown_during_an_outage_writes_its_end_and_no_plain_line(receiver: OTLPReceiver, child: Child) -> None:
    """Stopped while the collector is down: one WARNING and one closing INFO per signal, nothing on stderr.

    Without hoptel's handling, OpenTelemetry's exporter writes ``Shutdown in progress, aborting retry.`` as plain
    text on stderr here (its export thread logs it after the log pipeline has gone).
    """
    receiver.stop()
    for signal in SIGNALS:
        _wait(lambda signal=signal: child.outage_lines("WARNING", signal), f"the {signal} outage WARNING")
    assert child.stop() == 0
    assert child.stderr.read_text() == ""
    lines = child.lines()
    assert not [line for line in lines if ATTEMPT_LINE.search(line["message"])]
    for signal in SIGNALS:
        assert len(child.outage_lines("WARNING", signal)) == 1
        (info,) = child.outage_lines("INFO", signal)
        assert "was still failing at shutdown" in info["message"]
        assert info["failed_attempts"] >= 1


def test_attempt_lines_are_left_out_only_inside_hoptel_exports(caplog: pytest.LogCaptureFixture) -> None:
    """OpenTelemetry's retry lines are dropped inside a hoptel export call; other exporters' lines pass untouched."""
    install_attempt_lines_filter()
    logger = logging.getLogger(EXPORTER_LOGGERS[0])
    tracker = OutageTracker("traces", "http://collector:4317", CounterChild())
    with caplog.at_level(logging.WARNING, logger=logger.name):
        tracker.run(lambda: logger.warning("Transient error %s encountered while exporting traces", "UNAVAILABLE"))
        tracker.run(lambda: logger.warning("Dropping span batch: serialized size %d bytes exceeds", 10))
        logger.warning("Transient error %s encountered while exporting traces", "not hoptel's")
    assert [record.getMessage() for record in caplog.records if record.name == logger.name] == [
        "Dropping span batch: serialized size 10 bytes exceeds",
        "Transient error not hoptel's encountered while exporting traces",
    ]


def test_tracker_counts_each_failure_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    """Every failed attempt is counted; one WARNING starts an outage, one INFO (with the drops) ends it."""
    failures = CounterChild()
    dropped = [5.0]
    tracker = OutageTracker("traces", "http://collector:4317", failures, lambda: dropped[0], unit="spans")
    with caplog.at_level(logging.INFO, logger="hoptel.export"):
        tracker.attempt_succeeded()
        for _ in range(4):
            tracker.attempt_failed("UNAVAILABLE: connection refused")
        dropped[0] = 42.0
        tracker.attempt_succeeded()
        tracker.attempt_succeeded()
    assert failures.value == 4
    assert [(record.levelname, record.getMessage()[:44]) for record in caplog.records] == [
        ("WARNING", "OTLP traces export to http://collector:4317 "),
        ("INFO", "OTLP traces export to http://collector:4317 "),
    ]
    assert "is failing (UNAVAILABLE: connection refused)" in caplog.records[0].getMessage()
    assert "4 attempts failed, 37 spans dropped meanwhile" in caplog.records[1].getMessage()
    assert not tracker.failing
