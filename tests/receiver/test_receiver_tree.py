"""The tree printer: exact text for hand-built traces."""

from __future__ import annotations

import doctest
from typing import Any

import hoptel.receiver.tree
from hoptel.receiver import ReceivedSpan, StatusCode, format_span, format_trace, format_traces

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"
ROOT, CLIENT, SERVER = "a" * 16, "b" * 16, "c" * 16


def _span(
    span_id: str,
    parent: str | None,
    service: str,
    name: str,
    kind: Any,
    start_ms: float,
    end_ms: float,
    status: StatusCode = "UNSET",
    message: str = "",
    attributes: dict[str, Any] | None = None,
    trace_id: str = TRACE,
) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        start_ns=int(start_ms * 1_000_000),
        end_ns=int(end_ms * 1_000_000),
        status_code=status,
        status_message=message,
        attributes=attributes or {},
        events=(),
        resource={"service.name": service},
        service_name=service,
        scope_name="tests",
        protocol="grpc",
    )


def _checkout_trace() -> list[ReceivedSpan]:
    """A SERVER root, its CLIENT call, and the callee's SERVER span, given out of order."""
    return [
        _span(
            SERVER,
            CLIENT,
            "payments",
            "payments.Pay/Charge",
            "SERVER",
            2.0,
            4.5,
            "ERROR",
            "card declined",
            {"rpc.grpc.status_code": 9, "rpc.system": "grpc"},
        ),
        _span(
            ROOT,
            None,
            "checkout",
            "POST /orders",
            "SERVER",
            0.0,
            12.34,
            "UNSET",
            attributes={"http.response.status_code": 500, "error.type": "500", "url.path": "/orders"},
        ),
        _span(
            CLIENT,
            ROOT,
            "checkout",
            "payments.Pay/Charge",
            "CLIENT",
            1.0,
            5.0,
            "ERROR",
            "card declined",
            {"rpc.grpc.status_code": 9},
        ),
    ]


def test_three_span_trace_renders_exactly() -> None:
    """A three-span trace renders as a header and an indented tree with durations, status and key attributes."""
    assert format_trace(_checkout_trace()) == (
        "trace 4bf92f3577b34da6a3ce929d0e0e4736  3 spans\n"
        "  checkout  POST /orders  [SERVER]  12.34 ms  UNSET  http.response.status_code=500  error.type=500\n"
        "    checkout  payments.Pay/Charge  [CLIENT]  4.00 ms  ERROR: card declined  rpc.grpc.status_code=9\n"
        "      payments  payments.Pay/Charge  [SERVER]  2.50 ms  ERROR: card declined  rpc.grpc.status_code=9"
    )


def test_children_are_ordered_by_start_time() -> None:
    """Siblings print in start order whatever order they arrived in."""
    spans = [
        _span(ROOT, None, "api", "GET /", "SERVER", 0, 10, "OK"),
        _span("2" * 16, ROOT, "api", "second", "INTERNAL", 5, 6),
        _span("1" * 16, ROOT, "api", "first", "INTERNAL", 1, 2),
    ]

    assert format_trace(spans).splitlines()[1:] == [
        "  api  GET /  [SERVER]  10.00 ms  OK",
        "    api  first  [INTERNAL]  1.00 ms  UNSET",
        "    api  second  [INTERNAL]  1.00 ms  UNSET",
    ]


def test_span_with_missing_parent_is_a_root_that_says_so() -> None:
    """A span whose parent never arrived is shown as a root, naming the missing parent."""
    orphan = _span(CLIENT, "f" * 16, "checkout", "orphan", "CLIENT", 0, 1)

    assert format_trace([orphan]) == (
        f"trace {TRACE}  1 span\n  checkout  orphan  [CLIENT]  1.00 ms  UNSET  (parent {'f' * 16} not received)"
    )


def test_duplicate_span_is_shown_once() -> None:
    """A span received twice (a retried export) prints once and the header counts the duplicate."""
    root = _span(ROOT, None, "api", "GET /", "SERVER", 0, 1)

    assert format_trace([root, root]) == f"trace {TRACE}  1 span (+1 duplicate)\n  api  GET /  [SERVER]  1.00 ms  UNSET"


def test_parent_cycle_is_still_printed() -> None:
    """Spans whose parent links form a cycle (malformed ids) are printed rather than lost."""
    spans = [
        _span(ROOT, CLIENT, "api", "a", "INTERNAL", 0, 1),
        _span(CLIENT, ROOT, "api", "b", "INTERNAL", 1, 2),
    ]

    assert format_trace(spans).splitlines()[1:] == [
        "  api  a  [INTERNAL]  1.00 ms  UNSET",
        "    api  b  [INTERNAL]  1.00 ms  UNSET",
    ]


def test_empty_input_renders_nothing() -> None:
    """No spans render as the empty string."""
    assert format_trace([]) == ""
    assert format_traces([]) == ""


def test_format_span_without_service_or_attributes() -> None:
    """A span without a service name shows '?'; a status message is shown for OK too."""
    span = _span(ROOT, None, "", "idle", "PRODUCER", 0, 0.25, "OK", "fine")

    assert format_span(span) == "?  idle  [PRODUCER]  0.25 ms  OK: fine"


def test_format_traces_groups_and_orders_by_start() -> None:
    """format_traces prints one tree per trace, earliest first, separated by a blank line."""
    late = _span(ROOT, None, "api", "late", "SERVER", 50, 51)
    early = _span(CLIENT, None, "api", "early", "SERVER", 10, 11, trace_id=OTHER)

    assert format_traces([late, early]) == (
        f"trace {OTHER}  1 span\n  api  early  [SERVER]  1.00 ms  UNSET\n"
        "\n"
        f"trace {TRACE}  1 span\n  api  late  [SERVER]  1.00 ms  UNSET"
    )


def test_module_doctest_passes() -> None:
    """The example in the tree module's docstring is correct."""
    result = doctest.testmod(hoptel.receiver.tree)

    assert result.attempted > 0
    assert result.failed == 0
