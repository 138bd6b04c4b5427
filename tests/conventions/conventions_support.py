"""Helpers for the conventions tests: a plain ASGI app that reports what it received, and metric lookups."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import hoptel
from hoptel.receiver import OTLPReceiver
from hoptel.receiver.model import ReceivedSpan

__all__ = [
    "RESPONSE_HEADERS",
    "headers_app",
    "http_count",
    "only_span",
    "sample",
]

RESPONSE_HEADERS = [
    (b"x-resp", b"r1"),
    (b"x-resp", b"r2"),
    (b"x-session-token", b"s3cret"),
    (b"set-cookie", b"session=s3cret"),
    (b"content-type", b"application/json"),
]
"""What :func:`headers_app` answers with, besides its JSON body."""

Scope = MutableMapping[str, Any]


async def headers_app(
    scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
) -> None:
    """An ASGI app answering 200 with the request headers it received as a JSON object (lower-case names)."""
    if scope["type"] != "http":
        return
    received = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    await send({"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS})
    await send({"type": "http.response.body", "body": json.dumps(received).encode()})


def sample(telemetry: hoptel.Telemetry, name: str, **labels: str) -> float:
    """A sample's value from the Telemetry's registry (0 when the series does not exist)."""
    value = telemetry.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def http_count(telemetry: hoptel.Telemetry, side: str) -> float:
    """How many requests the ``http_{side}_request_duration_seconds`` histogram observed, all series."""
    total = 0.0
    for family in telemetry.registry.collect():
        if family.name == f"http_{side}_request_duration_seconds":
            total += sum(s.value for s in family.samples if s.name.endswith("_count"))
    return total


def only_span(receiver: OTLPReceiver, kind: str, timeout: float = 10.0) -> ReceivedSpan:
    """Wait for a span of ``kind`` and check that it is the only one of that kind."""
    receiver.wait_for_spans(1, timeout=timeout, predicate=lambda span: span.kind == kind)
    spans = [span for span in receiver.spans() if span.kind == kind]
    assert len(spans) == 1, spans
    return spans[0]
