"""OTLP protobuf encoding of hop spans, written straight to wire bytes.

The OTel encoder builds one protobuf object per span, attribute and value from Python and costs tens of µs per
span. Hop spans share most of their attributes (the route's, precomputed and never mutated), so their encoded form
is cached per attribute mapping and a span is a handful of byte concatenations. Spans made through the SDK are
encoded by the OTel encoder and appended as their own ``ResourceSpans``; concatenating serialized messages is how
protobuf merges repeated fields, so one request carries both.

Field numbers are those of opentelemetry/proto/trace/v1/trace.proto and common/v1/common.proto.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind, StatusCode

from hoptel.hop_span import TUPLE_SPAN_CONTEXT as _TUPLE_CONTEXT
from hoptel.hop_span import HopSpan

__all__ = ["HopSpanEncoder"]

_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_KIND = {kind: kind.value + 1 for kind in SpanKind}  # OTLP's enum starts with UNSPECIFIED = 0
_STATUS = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}


_SMALL_VARINTS = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if 0 < value < 16384:  # two bytes: span and attribute lengths
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(payload)) + payload


def _string(field: int, text: str) -> bytes:
    return _length_delimited(field, text.encode("utf-8", "replace"))


def _any_value(value: Any) -> bytes:
    if isinstance(value, str):
        return _string(1, value)
    if isinstance(value, bool):
        return _tag(2, 0) + _varint(int(value))
    if isinstance(value, int):
        return _tag(3, 0) + _varint(value)
    if isinstance(value, float):
        return _tag(4, 1) + _pack_double(value)
    if isinstance(value, bytes):
        return _length_delimited(7, value)
    if isinstance(value, Sequence):
        values = b"".join(_length_delimited(1, _any_value(item)) for item in value)
        return _length_delimited(5, values)
    return _string(1, str(value))


def _key_value(field: int, key: str, value: Any) -> bytes:
    return _length_delimited(field, _string(1, key) + _length_delimited(2, _any_value(value)))


def _attributes(field: int, attributes: Mapping[str, Any]) -> bytes:
    return b"".join(_key_value(field, key, value) for key, value in attributes.items())


_SCALARS = (str, int, float, bool)
_key_value_cache: dict[tuple[int, str, type, Any], bytes] = {}


def _attributes_cached(field: int, attributes: Mapping[str, Any]) -> bytes:
    """Like ``_attributes``; each scalar key/value pair is encoded once (status codes, peer addresses, ...)."""
    parts = []
    cache = _key_value_cache
    for key, value in attributes.items():
        if type(value) in _SCALARS:
            cache_key = (field, key, type(value), value)  # the type keeps True and 1 apart
            encoded = cache.get(cache_key)
            if encoded is None:
                encoded = _key_value(field, key, value)
                if len(cache) < 16384:
                    cache[cache_key] = encoded
            parts.append(encoded)
        else:
            parts.append(_key_value(field, key, value))
    return b"".join(parts)


_TRACE_ID_TAG = _tag(1, 2) + _varint(16)
_SPAN_ID_TAG = _tag(2, 2) + _varint(8)
_PARENT_ID_TAG = _tag(4, 2) + _varint(8)
_EVENT_TIME_TAG = _tag(1, 1)
_SPAN_TAG = _tag(2, 2)
# start_time_unix_nano (7, fixed64), end_time_unix_nano (8, fixed64) and flags (16, fixed32) in one pack; the
# tags are the bytes below (field 16's tag is a two-byte varint). Protobuf accepts fields in any order.
_TIMES_AND_FLAGS = struct.Struct("<BQBQBBI")
_START_TAG_BYTE, _END_TAG_BYTE = _tag(7, 1)[0], _tag(8, 1)[0]
_FLAGS_TAG_BYTES = tuple(_tag(16, 5))
_pack_times_and_flags = _TIMES_AND_FLAGS.pack
_REMOTE_PARENT_FLAGS = 0x300  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_LOCAL_PARENT_FLAGS = 0x100  # SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_UNSET = StatusCode.UNSET


class HopSpanEncoder:
    """Encodes batches of spans (hop spans and SDK spans) into an ``ExportTraceServiceRequest``."""

    def __init__(self, resource: Resource, scope_name: str = "hoptel", scope_version: str = "") -> None:
        resource_bytes = _attributes(1, resource.attributes)
        scope = _string(1, scope_name) + (_string(2, scope_version) if scope_version else b"")
        self._resource_field = _length_delimited(1, resource_bytes)
        self._scope_field = _length_delimited(1, scope)
        self._attribute_cache: dict[int, tuple[Mapping[str, Any], bytes]] = {}
        # (name, kind, id(route attributes)) -> name + kind + route attributes, encoded: fixed per route.
        self._route_cache: dict[tuple[str, SpanKind, int], tuple[Mapping[str, Any], bytes]] = {}

    def _base_attributes(self, attributes: Mapping[str, Any]) -> bytes:
        cached = self._attribute_cache.get(id(attributes))
        if cached is not None and cached[0] is attributes:
            return cached[1]
        encoded = _attributes(9, attributes)
        if len(self._attribute_cache) < 4096:
            self._attribute_cache[id(attributes)] = (attributes, encoded)  # keeps the mapping alive: id stays valid
        return encoded

    def _route_fields(self, name: str, kind: SpanKind, attributes: Mapping[str, Any]) -> bytes:
        """The span's name, kind and route attributes, encoded once per route (they never change for it)."""
        key = (name, kind, id(attributes))
        cached = self._route_cache.get(key)
        if cached is not None and cached[0] is attributes:
            return cached[1]
        encoded = _string(5, name) + _tag(6, 0) + _varint(_KIND[kind]) + self._base_attributes(attributes)
        if len(self._route_cache) < 4096:
            self._route_cache[key] = (attributes, encoded)  # keeps the mapping alive: its id stays valid
        return encoded

    def encode_span(self, span: HopSpan) -> bytes:
        """One ``Span`` message (without its field tag)."""
        context = span.get_span_context()
        if _TUPLE_CONTEXT:
            trace_id, span_id, _, trace_flags, state, _ = context
        else:  # pragma: no cover - a future API release without the tuple layout
            trace_id, span_id, trace_flags, state = (
                context.trace_id,
                context.span_id,
                context.trace_flags,
                context.trace_state,
            )
        parts = [_TRACE_ID_TAG, trace_id.to_bytes(16, "big"), _SPAN_ID_TAG, span_id.to_bytes(8, "big")]
        if state:
            parts.append(_string(3, state.to_header()))
        parent = span.parent
        flags = trace_flags | _LOCAL_PARENT_FLAGS
        if parent is not None:
            parts.append(_PARENT_ID_TAG)
            parts.append(parent.span_id.to_bytes(8, "big"))
            if parent.is_remote:
                flags = trace_flags | _REMOTE_PARENT_FLAGS
        base = span.base_attributes
        extra = span.extra_attributes
        if extra and not extra.keys().isdisjoint(base):  # the span overrides a route attribute: encode the merge
            parts.append(_string(5, span.name) + _tag(6, 0) + _varint(_KIND[span.kind]))
            parts.append(_attributes_cached(9, {**base, **extra}))
        else:
            parts.append(self._route_fields(span.name, span.kind, base))
            if extra:
                parts.append(_attributes_cached(9, extra))
        start = span.start_time
        parts.append(
            _pack_times_and_flags(
                _START_TAG_BYTE, start, _END_TAG_BYTE, span.end_time or start, *_FLAGS_TAG_BYTES, flags
            )
        )
        for event in span.events:
            payload = _EVENT_TIME_TAG + _pack_fixed64(event.time_ns) + _string(2, event.name)
            payload += _attributes(3, event.attributes)
            parts.append(_length_delimited(11, payload))
        for link in span.links:
            link_payload = link.context.trace_id.to_bytes(16, "big")
            payload = _length_delimited(1, link_payload) + _length_delimited(2, link.context.span_id.to_bytes(8, "big"))
            payload += _attributes(4, link.attributes or {})
            parts.append(_length_delimited(13, payload))
        status = span.status
        if status.status_code is not _UNSET:
            payload = _tag(3, 0) + _varint(_STATUS[status.status_code])
            if status.description:
                payload = _string(2, status.description) + payload
            parts.append(_length_delimited(15, payload))
        return b"".join(parts)

    def encode(self, spans: Iterable[Any]) -> bytes:
        """A serialized ``ExportTraceServiceRequest`` for a batch mixing hop spans and SDK ``ReadableSpan``s."""
        hop_spans: list[bytes] = []
        append = hop_spans.append
        encode_span = self.encode_span
        sdk_spans = []
        for span in spans:
            if type(span) is HopSpan:
                encoded = encode_span(span)
                append(_SPAN_TAG)  # ScopeSpans.spans: tag, length, message
                append(_varint(len(encoded)))
                append(encoded)
            else:
                sdk_spans.append(span)
        request = b""
        if hop_spans:
            scope_spans = _length_delimited(2, self._scope_field + b"".join(hop_spans))
            request = _length_delimited(1, self._resource_field + scope_spans)
        if sdk_spans:
            request += encode_spans(sdk_spans).SerializeToString()
        return request
