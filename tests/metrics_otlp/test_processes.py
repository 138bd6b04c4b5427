"""Each process pushes its own series under its own service.instance.id (separate processes, and a fork)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hoptel.receiver import OTLPReceiver

APP = Path(__file__).with_name("process_app.py")
TESTS = Path(__file__).parents[1]
RUN_TIMEOUT_S = 60.0


def _run(receiver: OTLPReceiver, *args: str) -> None:
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
        "OTEL_TRACES_EXPORTER": "none",
        "HOPTEL_LOG": "warning",
    }
    environ.pop("OTEL_RESOURCE_ATTRIBUTES", None)
    done = subprocess.run(
        [sys.executable, str(APP), *args], env=environ, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr


def _counts_by_instance(receiver: OTLPReceiver, name: str) -> dict[str, int]:
    """The latest count pushed per service.instance.id (cumulative: flush and shutdown both push)."""
    return {point.instance_id: point.count for point in receiver.metrics() if point.name == name}


def test_two_processes_push_two_instances(receiver: OTLPReceiver) -> None:
    """Two processes of one service each push their own calls under a distinct service.instance.id."""
    _run(receiver, "calls", "2")
    _run(receiver, "calls", "3")

    counts = _counts_by_instance(receiver, "rpc.server.call.duration")
    assert sorted(counts.values()) == [2, 3]
    assert all(counts)  # every instance id is set


def test_a_forked_child_pushes_its_own_calls_under_its_own_id(receiver: OTLPReceiver) -> None:
    """A child forked after setup() pushes only its own hops, under a new id; the parent pushes only its own."""
    _run(receiver, "fork", "3", "2")

    points = [p for p in receiver.metrics() if p.name == "rpc.server.call.duration"]
    first_by_instance = {}
    for point in points:  # the parent pushes twice (its flush, then shutdown's last push): same counts
        first_by_instance.setdefault(point.instance_id, point)
    child, parent = first_by_instance.values()  # the child flushed first
    assert (child.count, parent.count) == (2, 3)
    assert child.start_ns > parent.start_ns  # the child's series began at the fork
