"""The JSON and text line formats, and the message/extra-field helpers they share."""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext

from hoptel.logs.fields import Entry, Rfc3339Clock, capture_message, extra_fields, message_of
from hoptel.logs.json_format import JSONFormatter
from hoptel.logs.text_format import TextFormatter

RFC3339_MICROS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def make_record(
    msg: object = "hello %s",
    args: Any = ("world",),
    *,
    level: int = logging.INFO,
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
    stack_info: str | None = None,
) -> logging.LogRecord:
    record = logging.getLogger("orders.api").makeRecord(
        "orders.api", level, __file__, 10, msg, args, exc_info, "handler", extra
    )
    record.stack_info = stack_info
    return record


def entry(record: logging.LogRecord, span_context: SpanContext = INVALID_SPAN_CONTEXT) -> Entry:
    return (record, capture_message(record), span_context)


def real_span_context() -> SpanContext:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        return span.get_span_context()


def test_json_line_has_the_core_fields_in_order() -> None:
    """A JSON line carries timestamp, level, logger, message and service.name, in that order."""
    line = JSONFormatter("orders")(entry(make_record()))
    document = json.loads(line)
    assert list(document) == ["timestamp", "level", "logger", "message", "service.name"]
    assert document["level"] == "INFO"
    assert document["logger"] == "orders.api"
    assert document["message"] == "hello world"
    assert document["service.name"] == "orders"
    assert RFC3339_MICROS_UTC.match(document["timestamp"])
    assert "\n" not in line


def test_json_line_carries_trace_and_span_ids_of_the_captured_span() -> None:
    """trace_id (32 hex) and span_id (16 hex) come from the span context captured with the record."""
    context = real_span_context()
    document = json.loads(JSONFormatter("orders")(entry(make_record(), context)))
    assert document["trace_id"] == format(context.trace_id, "032x")
    assert document["span_id"] == format(context.span_id, "016x")


def test_json_line_without_a_span_has_no_ids() -> None:
    """Without a valid span context the id keys are absent rather than zero."""
    document = json.loads(JSONFormatter("orders")(entry(make_record())))
    assert "trace_id" not in document
    assert "span_id" not in document


def test_json_line_includes_exception_and_stack_text() -> None:
    """exc_info becomes the formatted traceback under exception; stack_info goes under stack."""
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = make_record("failed", (), level=logging.ERROR, exc_info=exc_info, stack_info="Stack (most recent)")
    document = json.loads(JSONFormatter("orders")(entry(record)))
    assert document["exception"].startswith("Traceback (most recent call last):")
    assert document["exception"].endswith("ValueError: boom")
    assert document["stack"] == "Stack (most recent)"


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque 7>"


def test_json_line_includes_extra_fields_and_reprs_what_json_cannot_hold() -> None:
    """Extra fields follow the core fields; objects, NaN and cycles are written as repr() so the line stays JSON."""
    cycle: list[object] = []
    cycle.append(cycle)
    extra = {"user": "ada", "count": 3, "tags": ["a", "b"], "obj": Opaque(), "ratio": math.nan, "loop": cycle}
    document = json.loads(JSONFormatter("orders")(entry(make_record(extra=extra))))
    assert document["user"] == "ada"
    assert document["count"] == 3
    assert document["tags"] == ["a", "b"]
    assert document["obj"] == "<Opaque 7>"
    assert document["ratio"] == "nan"
    assert document["loop"] == "[[...]]"


def test_json_extra_named_like_a_core_field_does_not_overwrite_it() -> None:
    """An extra field called level or trace_id is written as extra.<name>."""
    document = json.loads(JSONFormatter("orders")(entry(make_record(extra={"level": "x", "trace_id": "y"}))))
    assert document["level"] == "INFO"
    assert document["extra.level"] == "x"
    assert document["extra.trace_id"] == "y"


def test_json_output_is_ascii_and_valid_for_any_text() -> None:
    """Non-ASCII text and control characters are escaped: one valid ASCII line per record."""
    line = JSONFormatter("orders")(entry(make_record("naïve %s", ("línea\nnueva\x00",))))
    assert line.isascii()
    assert "\n" not in line
    assert json.loads(line)["message"] == "naïve línea\nnueva\x00"


def test_bad_format_string_becomes_a_description_not_an_error() -> None:
    """A message whose % formatting fails is described in the line instead of raising."""
    record = make_record("%d items", ("many",))
    message = json.loads(JSONFormatter("orders")(entry(record)))["message"]
    assert "could not format" in message
    assert "'%d items'" in message


def test_mutable_arguments_are_rendered_on_the_calling_thread() -> None:
    """A list argument is rendered at capture time, so a later mutation does not change the message."""
    items = ["a"]
    record = make_record("items %s", (items,))
    captured = entry(record)
    items.append("b")
    assert message_of(captured) == "items ['a']"


@pytest.mark.parametrize("args", [("x", 1, 2.5, True, None, b"y"), ()])
def test_immutable_arguments_are_left_to_the_worker(args: tuple[object, ...]) -> None:
    """With only immutable arguments nothing is rendered on the calling thread."""
    assert capture_message(make_record("m" + " %s" * len(args), args)) is None


def test_non_string_message_is_rendered_at_capture() -> None:
    """A dict passed as the message itself is rendered at capture time."""
    payload = {"k": 1}
    captured = entry(make_record(payload, None))
    payload["k"] = 2
    assert message_of(captured) == "{'k': 1}"


def test_extra_fields_excludes_standard_attributes() -> None:
    """Only attributes a plain LogRecord lacks count as extra fields, in the order they were given."""
    record = make_record(extra={"b": 1, "a": 2})
    record.otelTraceID = "0"  # set by opentelemetry-instrumentation-logging; hoptel writes its own ids
    assert list(extra_fields(record)) == ["b", "a"]


def test_clock_formats_rfc3339_microseconds_utc() -> None:
    """Timestamps are RFC 3339 in UTC with six fractional digits and a Z."""
    clock = Rfc3339Clock()
    assert clock(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"
    assert clock(1_700_000_000.999_999_6) == "2023-11-14T22:13:21.000000Z"  # rounding carries into the seconds
    assert clock(1_700_000_001.000_001) == "2023-11-14T22:13:21.000001Z"


def test_text_line_is_readable_with_extras_and_ids() -> None:
    """The text format shows time, level, service, logger, message, key=value extras and the ids."""
    context = real_span_context()
    line = TextFormatter("orders")(entry(make_record(extra={"user": "ada lovelace", "n": 3}), context))
    prefix, rest = line.split(" ", 1)
    assert RFC3339_MICROS_UTC.match(prefix)
    assert rest.startswith("INFO     [orders] orders.api: hello world user='ada lovelace' n=3 ")
    assert rest.endswith(f"trace_id={context.trace_id:032x} span_id={context.span_id:016x}")


def test_text_line_puts_the_traceback_on_following_lines() -> None:
    """An exception's traceback follows the record line."""
    try:
        raise KeyError("missing")
    except KeyError:
        exc_info = sys.exc_info()
    lines = TextFormatter("orders")(entry(make_record("lookup", (), exc_info=exc_info))).splitlines()
    assert lines[0].endswith("orders.api: lookup")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'missing'"
