"""``service.instance.id``: one UUID v4 per process on its spans and OTLP logs; a forked child gets its own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedLog, ReceivedSpan

APP = Path(__file__).resolve().parent / "instance_id_app.py"
WAIT_S = 60.0
ID = "service.instance.id"


def _run(receiver: OTLPReceiver, name: str, *args: str, **extra: str) -> None:
    """Run the app (``name``, ``args``) exporting spans and logs to ``receiver``; it must exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOPTEL_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_LOGS_EXPORTER": "otlp",
            "HOPTEL_METRICS_ADDR": "off",
            **extra,
        }
    )
    result = subprocess.run(
        [sys.executable, str(APP), name, *args], env=env, capture_output=True, text=True, timeout=WAIT_S
    )
    assert result.returncode == 0, result.stderr


def _ids_of(receiver: OTLPReceiver, who: str) -> set[str]:
    """The instance ids on ``who``'s SDK span, hop span and log record (all three must have arrived)."""
    sdk: list[ReceivedSpan] = receiver.wait_for_spans(1, WAIT_S, lambda span: span.name == f"sdk-{who}")
    hop: list[ReceivedSpan] = receiver.wait_for_spans(
        1, WAIT_S, lambda span: span.attributes.get("url.path") == f"/hop-{who}"
    )
    logs: list[ReceivedLog] = receiver.wait_for_logs(1, WAIT_S, lambda log: log.body == f"log-{who}")
    return {str(item.resource.get(ID)) for item in (*sdk, *hop, *logs)}


def _one_uuid4(ids: set[str]) -> str:
    """The single id in ``ids``, checked to be a UUID v4."""
    assert len(ids) == 1, ids
    (value,) = ids
    assert uuid.UUID(value).version == 4, value
    return value


def test_spans_and_logs_of_a_process_carry_one_id_and_two_processes_differ(receiver: OTLPReceiver) -> None:
    """SDK spans, hop spans and OTLP logs of a process share one UUID v4; a second process has another."""
    _run(receiver, "first")
    _run(receiver, "second")
    first = _one_uuid4(_ids_of(receiver, "first-parent"))
    second = _one_uuid4(_ids_of(receiver, "second-parent"))
    assert first != second


def test_a_child_forked_after_setup_has_its_own_id(receiver: OTLPReceiver) -> None:
    """A child forked after setup() exports spans and logs under a new id; the parent keeps its own."""
    _run(receiver, "forking", "--fork")
    parent = _one_uuid4(_ids_of(receiver, "forking-parent"))
    child = _one_uuid4(_ids_of(receiver, "forking-child"))
    assert child != parent
    assert _one_uuid4(_ids_of(receiver, "forking-parent-after")) == parent


def test_a_configured_id_wins_in_the_parent_and_in_forked_children(receiver: OTLPReceiver) -> None:
    """service.instance.id from OTEL_RESOURCE_ATTRIBUTES is used as given, by the parent and by a forked child."""
    _run(receiver, "pinned", "--fork", OTEL_RESOURCE_ATTRIBUTES="service.instance.id=orders-7,team=core")
    for who in ("pinned-parent", "pinned-child", "pinned-parent-after"):
        assert _ids_of(receiver, who) == {"orders-7"}, who
