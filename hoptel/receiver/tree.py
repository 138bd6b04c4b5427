"""Render received traces as indented trees, one line per span.

>>> from hoptel.receiver.model import ReceivedSpan
>>> def span(span_id, parent, name, kind, start, end, status="UNSET", attrs=None):
...     return ReceivedSpan("ab" * 16, span_id, parent, name, kind, start, end, status, "", attrs or {}, (),
...                         {}, "shop", "demo", "grpc")
>>> print(format_trace([
...     span("01" * 8, None, "GET /cart", "SERVER", 0, 2_500_000, "OK", {"http.response.status_code": 200}),
...     span("02" * 8, "01" * 8, "cart.Cart/Get", "CLIENT", 500_000, 1_500_000),
... ]))
trace abababababababababababababababab  2 spans
  shop  GET /cart  [SERVER]  2.50 ms  OK  http.response.status_code=200
    shop  cart.Cart/Get  [CLIENT]  1.00 ms  UNSET
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hoptel.receiver.model import ReceivedSpan

__all__ = ["KEY_ATTRIBUTES", "format_span", "format_trace", "format_traces"]

KEY_ATTRIBUTES: tuple[str, ...] = (
    "rpc.grpc.status_code",
    "rpc.status_code",
    "http.response.status_code",
    "error.type",
)
"""Attributes shown on a span's line, in this order, when the span has them."""

_INDENT = "  "


def _order(span: ReceivedSpan) -> tuple[int, str]:
    return span.start_ns, span.span_id


def format_span(span: ReceivedSpan) -> str:
    """Return one span's line, without indentation.

    The shape is ``service  name  [KIND]  1.23 ms  STATUS  key=value ...`` where STATUS is ``OK``, ``UNSET``,
    ``ERROR`` or ``ERROR: message``, followed by whichever of ``KEY_ATTRIBUTES`` the span has.

    Args:
        span: The span.

    Returns:
        The line.
    """
    status = f"{span.status_code}: {span.status_message}" if span.status_message else span.status_code
    parts = [
        span.service_name or "?",
        span.name,
        f"[{span.kind}]",
        f"{span.duration_ns / 1e6:.2f} ms",
        status,
    ]
    parts.extend(f"{key}={span.attributes[key]}" for key in KEY_ATTRIBUTES if key in span.attributes)
    return _INDENT.join(parts)


def format_trace(spans: Sequence[ReceivedSpan]) -> str:
    """Render one trace as an indented tree under a header line.

    Roots are the spans whose parent is absent from ``spans`` (a root whose parent was never received says
    so); children follow their parent, indented, ordered by start time. A span id seen twice (a retried
    export) is shown once, and the header counts the duplicates.

    Args:
        spans: The trace's spans, in any order.

    Returns:
        The rendered tree without a trailing newline; ``""`` for no spans.
    """
    if not spans:
        return ""
    unique: dict[str, ReceivedSpan] = {}
    for span in spans:
        unique.setdefault(span.span_id, span)  # a span exported twice (a retried export) is shown once
    children: dict[str, list[ReceivedSpan]] = {}
    roots: list[ReceivedSpan] = []
    for span in unique.values():
        if span.parent_span_id is not None and span.parent_span_id in unique:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    trace_ids = sorted({span.trace_id for span in unique.values()})
    count = len(unique)
    header = f"trace {', '.join(trace_ids)}  {count} span{'s' if count != 1 else ''}"
    if count != len(spans):
        header += f" (+{len(spans) - count} duplicate)"
    lines = [header]
    seen: set[int] = set()

    def walk(root: ReceivedSpan) -> None:
        stack = [(root, 1)]
        while stack:
            span, depth = stack.pop()
            if id(span) in seen:
                continue
            seen.add(id(span))
            line = _INDENT * depth + format_span(span)
            if depth == 1 and span.parent_span_id is not None and span.parent_span_id not in unique:
                line += f"  (parent {span.parent_span_id} not received)"
            lines.append(line)
            kids = sorted(children.get(span.span_id, ()), key=_order, reverse=True)
            stack.extend((kid, depth + 1) for kid in kids)

    for root in sorted(roots, key=_order):
        walk(root)
    # Spans in a parent cycle (only possible with malformed ids) have no root; show them rather than lose them.
    for span in sorted(unique.values(), key=_order):
        if id(span) not in seen:
            walk(span)
    return "\n".join(lines)


def format_traces(spans: Iterable[ReceivedSpan]) -> str:
    """Render many traces, e.g. ``format_traces(rx.spans())``: one tree each, separated by a blank line.

    Args:
        spans: Spans of any number of traces, in any order.

    Returns:
        The trees, earliest-starting trace first; ``""`` for no spans.
    """
    grouped: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        grouped.setdefault(span.trace_id, []).append(span)
    ordered = sorted(grouped.values(), key=lambda trace: min(span.start_ns for span in trace))
    return "\n\n".join(format_trace(trace) for trace in ordered)
