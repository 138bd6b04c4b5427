"""Turn OTLP protobuf export requests into the receiver's value objects.

Both transports decode to the same ``Export*ServiceRequest`` messages, so both call these two functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from hoptel.receiver.model import (
    Protocol,
    ReceivedEvent,
    ReceivedLog,
    ReceivedSpan,
    SpanKind,
    StatusCode,
)

__all__ = ["any_value", "attributes", "logs_from_request", "spans_from_request"]

# Indexed by the protobuf enum values: Span.SpanKind (0 = unspecified) and Status.StatusCode.
_KINDS: tuple[SpanKind, ...] = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUSES: tuple[StatusCode, ...] = ("UNSET", "OK", "ERROR")


def any_value(value: AnyValue) -> Any:
    """Return the Python value of an OTLP ``AnyValue``.

    Args:
        value: The protobuf value.

    Returns:
        ``str``, ``bool``, ``int``, ``float``, ``bytes``, ``list`` (array) or ``dict`` (kvlist); ``None`` when
        the value is empty.
    """
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, which)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    """Return OTLP key/value pairs as a ``dict`` of Python values.

    Args:
        pairs: The repeated ``KeyValue`` field.

    Returns:
        A new ``dict``; a repeated key keeps its last value.
    """
    return {pair.key: any_value(pair.value) for pair in pairs}


def _hex_or_none(raw: bytes) -> str | None:
    return raw.hex() if raw else None


def _service_name(resource: dict[str, Any]) -> str:
    name = resource.get("service.name")
    return "" if name is None else str(name)


def _kind(value: int) -> SpanKind:
    return _KINDS[value] if 0 <= value < len(_KINDS) else "INTERNAL"


def _status(value: int) -> StatusCode:
    return _STATUSES[value] if 0 <= value < len(_STATUSES) else "UNSET"


def _in_scopes(groups: Iterable[Any], scopes: str, items: str) -> Iterator[tuple[dict[str, Any], str, str, Any]]:
    """Each item (``items`` of ``scopes`` of each resource group) in request order, with its context.

    Yields:
        The resource's attributes, its service name, the scope's name and the item.
    """
    for group in groups:
        resource = attributes(group.resource.attributes)
        service = _service_name(resource)
        for scope_group in getattr(group, scopes):
            for item in getattr(scope_group, items):
                yield resource, service, scope_group.scope.name, item


def spans_from_request(request: ExportTraceServiceRequest, protocol: Protocol) -> list[ReceivedSpan]:
    """Flatten an OTLP trace export request into spans.

    Args:
        request: The decoded request.
        protocol: The transport it came over, recorded on every span.

    Returns:
        The spans in request order.
    """
    return [
        ReceivedSpan(
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_span_id=_hex_or_none(span.parent_span_id),
            name=span.name,
            kind=_kind(span.kind),
            start_ns=span.start_time_unix_nano,
            end_ns=span.end_time_unix_nano,
            status_code=_status(span.status.code),
            status_message=span.status.message,
            attributes=attributes(span.attributes),
            events=tuple(
                ReceivedEvent(event.name, attributes(event.attributes), event.time_unix_nano) for event in span.events
            ),
            resource=resource,
            service_name=service,
            scope_name=scope,
            protocol=protocol,
        )
        for resource, service, scope, span in _in_scopes(request.resource_spans, "scope_spans", "spans")
    ]


def _body(value: AnyValue) -> str:
    if value.WhichOneof("value") == "string_value":
        return value.string_value
    body = any_value(value)
    return "" if body is None else str(body)


def logs_from_request(request: ExportLogsServiceRequest, protocol: Protocol) -> list[ReceivedLog]:
    """Flatten an OTLP logs export request into log records.

    Args:
        request: The decoded request.
        protocol: The transport it came over, recorded on every record.

    Returns:
        The log records in request order.
    """
    return [
        ReceivedLog(
            body=_body(record.body),
            severity_text=record.severity_text,
            severity_number=record.severity_number,
            trace_id=_hex_or_none(record.trace_id),
            span_id=_hex_or_none(record.span_id),
            attributes=attributes(record.attributes),
            resource=resource,
            service_name=service,
            time_ns=record.time_unix_nano or record.observed_time_unix_nano,
            scope_name=scope,
            protocol=protocol,
        )
        for resource, service, scope, record in _in_scopes(request.resource_logs, "scope_logs", "log_records")
    ]
