"""Carriers: round trips on gRPC metadata, httpx.Headers, dicts, pairs and ASGI scopes; inject semantics."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import grpc
import httpx
import pytest
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.trace import TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from propagate_support import SPAN_HEX, SPAN_ID, TRACE_HEX, TRACE_ID, TRACEPARENT, remote, span_ctx, with_baggage

from hoptel.propagate import (
    ASGIGetter,
    HeadersGetter,
    HeadersSetter,
    MetadataGetter,
    MetadataSetter,
    Propagator,
)

ALL_NAMES = ["tracecontext", "baggage", "b3", "b3multi"]
SOURCE = with_baggage({"user": "alice", "tier": "gold 1"}, span_ctx(state=TraceState([("vendor", "x")])))


def _check(ctx: Context) -> None:
    sc = remote(ctx)
    assert (sc.trace_id, sc.span_id, sc.is_remote, sc.trace_flags.sampled) == (TRACE_ID, SPAN_ID, True, True)
    assert dict(baggage.get_all(ctx)) == {"user": "alice", "tier": "gold 1"}


@pytest.mark.parametrize("names", [["tracecontext", "baggage"], ["b3", "baggage"], ["b3multi", "baggage"], ALL_NAMES])
def test_metadata_round_trip(names: list[str]) -> None:
    """inject_metadata then extract_metadata restores the span context and baggage."""
    prop = Propagator(names)
    metadata = prop.inject_metadata([("x-request-id", "7")], SOURCE)
    assert all(key == key.lower() for key, _ in metadata)
    _check(prop.extract_metadata(metadata))
    _check(prop.extract_metadata(tuple(metadata)))
    _check(prop.extract_metadata(grpc.aio.Metadata(*metadata)))


@pytest.mark.parametrize("names", [["tracecontext", "baggage"], ["b3", "baggage"], ["b3multi", "baggage"], ALL_NAMES])
@pytest.mark.parametrize(
    "make",
    [httpx.Headers, dict, list],
    ids=["httpx.Headers", "dict", "list"],
)
def test_headers_round_trip(names: list[str], make: Callable[[], object]) -> None:
    """inject_headers then extract_headers works on httpx.Headers, dicts and lists of pairs."""
    prop = Propagator(names)
    headers = make()
    prop.inject_headers(headers, SOURCE)  # type: ignore[arg-type]  # each factory makes a supported carrier
    _check(prop.extract_headers(headers))  # type: ignore[arg-type]  # same


@pytest.mark.parametrize("names", [["tracecontext", "baggage"], ["b3", "baggage"], ["b3multi", "baggage"], ALL_NAMES])
def test_asgi_round_trip(names: list[str]) -> None:
    """Headers injected as bytes pairs are extracted from an ASGI scope."""
    prop = Propagator(names)
    raw: list[tuple[bytes, bytes]] = [(b"host", b"svc")]
    prop.inject_headers(raw, SOURCE)
    assert all(isinstance(key, bytes) and isinstance(value, bytes) for key, value in raw)
    _check(prop.extract_asgi({"type": "http", "headers": raw}))


def test_metadata_keys_compared_lower_case_and_bin_skipped(prop: Propagator) -> None:
    """Metadata keys match case-insensitively; -bin keys and bytes values are skipped."""
    metadata = [
        ("traceparent-bin", b"\x00\x01"),
        ("TraceParent", TRACEPARENT),
        ("baggage", b"bytes=ignored"),
        ("Baggage", "a=1"),
    ]
    ctx = prop.extract_metadata(metadata)  # type: ignore[arg-type]  # mixed on purpose
    assert remote(ctx).span_id == SPAN_ID
    assert dict(baggage.get_all(ctx)) == {"a": "1"}


def test_metadata_dict_and_none(prop: Propagator) -> None:
    """A dict of metadata is read by items; None is an empty carrier."""
    assert remote(prop.extract_metadata({"traceparent": TRACEPARENT})).span_id == SPAN_ID
    incoming = Context()
    assert prop.extract_metadata(None, incoming) is incoming


def test_inject_metadata_returns_new_list_and_keeps_callers(prop: Propagator) -> None:
    """The caller's metadata is kept in order and untouched; ours is appended in a new list."""
    caller = (("x-a", "1"), ("bin-bin", b"\x00"), ("x-b", "2"))
    out = prop.inject_metadata(caller, SOURCE)
    assert out[:3] == list(caller)
    assert [key for key, _ in out[3:]] == ["traceparent", "tracestate", "baggage"]
    assert caller == (("x-a", "1"), ("bin-bin", b"\x00"), ("x-b", "2"))


def test_inject_metadata_replaces_existing_keys(prop: Propagator) -> None:
    """A caller's traceparent/tracestate/baggage (any case) is replaced, never duplicated."""
    caller = [("Traceparent", "stale"), ("x", "y"), ("tracestate", "old=1"), ("baggage", "old=1")]
    out = prop.inject_metadata(caller, span_ctx())
    assert out == [("x", "y"), ("baggage", "old=1"), ("traceparent", f"00-{TRACE_HEX}-{SPAN_HEX}-01")]
    assert caller[0] == ("Traceparent", "stale")


def test_inject_metadata_nothing_to_write_copies(prop: Propagator) -> None:
    """With no span and no baggage the result is a copy of the caller's metadata (or [] for None)."""
    caller = [("x", "y")]
    out = prop.inject_metadata(caller, Context())
    assert out == caller
    assert out is not caller
    assert prop.inject_metadata(None, Context()) == []
    assert prop.inject_metadata(grpc.aio.Metadata(("a", "b")), Context()) == [("a", "b")]


def test_inject_uses_current_context_by_default(prop: Propagator) -> None:
    """Without an explicit context, inject reads the current one."""
    from opentelemetry import context as otel_context

    token = otel_context.attach(span_ctx())
    try:
        out = prop.inject_metadata(None)
    finally:
        otel_context.detach(token)
    assert out == [("traceparent", f"00-{TRACE_HEX}-{SPAN_HEX}-01")]


def test_httpx_inject_in_place_replaces(prop: Propagator) -> None:
    """httpx.Headers is written in place; existing values (any case) are replaced, stale tracestate removed."""
    headers = httpx.Headers([("TraceParent", "stale"), ("TraceState", "old=1"), ("Accept", "*/*")])
    prop.inject_headers(headers, span_ctx())
    assert headers.get_list("traceparent") == [f"00-{TRACE_HEX}-{SPAN_HEX}-01"]
    assert "tracestate" not in headers
    assert headers["accept"] == "*/*"


def test_dict_inject_replaces_other_case(prop: Propagator) -> None:
    """A plain dict has any case-variant of our names removed before ours are set."""
    headers = {"Traceparent": "stale", "keep": "1"}
    prop.inject_headers(headers, span_ctx())
    assert headers == {"keep": "1", "traceparent": f"00-{TRACE_HEX}-{SPAN_HEX}-01"}


def test_list_inject_str_pairs(prop: Propagator) -> None:
    """A list of str pairs is updated in place; our pairs are str."""
    headers = [("Traceparent", "stale"), ("a", "b")]
    prop.inject_headers(headers, span_ctx())
    assert headers == [("a", "b"), ("traceparent", f"00-{TRACE_HEX}-{SPAN_HEX}-01")]


def test_inject_into_unsupported_carrier_raises(prop: Propagator) -> None:
    """Inject into something that cannot hold headers is a TypeError (a programming error)."""
    with pytest.raises(TypeError, match="cannot inject into tuple"):
        prop.inject_headers((), span_ctx())


def test_headers_mapping_is_case_insensitive(prop: Propagator) -> None:
    """Mapping lookups ignore case; bytes and list values are read too."""
    assert remote(prop.extract_headers({"TRACEPARENT": TRACEPARENT})).span_id == SPAN_ID
    assert remote(prop.extract_headers({"traceparent": TRACEPARENT.encode()})).span_id == SPAN_ID
    listed = {"traceparent": [TRACEPARENT]}  # OpenTelemetry's DefaultGetter shape
    assert remote(prop.extract_headers(listed)).span_id == SPAN_ID  # type: ignore[arg-type]  # list values on purpose


def test_httpx_repeated_tracestate_combined(prop: Propagator) -> None:
    """Several tracestate headers in httpx.Headers are combined in order."""
    headers = httpx.Headers([("traceparent", TRACEPARENT), ("tracestate", "a=1"), ("TraceState", "b=2")])
    assert dict(remote(prop.extract_headers(headers)).trace_state) == {"a": "1", "b": "2"}


def test_asgi_scope_without_headers(prop: Propagator) -> None:
    """A scope with no headers (or no headers key) leaves the context unchanged."""
    incoming = Context()
    assert prop.extract_asgi({"type": "http"}, incoming) is incoming
    assert prop.extract_asgi({"type": "http", "headers": []}, incoming) is incoming


def test_getters_and_setters_work_with_opentelemetry_propagators() -> None:
    """The Getter/Setter classes serve OpenTelemetry's own propagators."""
    otel = TraceContextTextMapPropagator()
    metadata: list[tuple[str, str | bytes]] = [("x", "y")]
    otel.inject(metadata, span_ctx(), setter=MetadataSetter())
    assert metadata[-1] == ("traceparent", f"00-{TRACE_HEX}-{SPAN_HEX}-01")
    assert remote(otel.extract(metadata, getter=MetadataGetter())).span_id == SPAN_ID

    headers = httpx.Headers()
    B3MultiFormat().inject(headers, span_ctx(), setter=HeadersSetter())
    assert remote(B3MultiFormat().extract(headers, getter=HeadersGetter())).span_id == SPAN_ID

    scope = {"headers": [(b"baggage", b"a=1")]}
    assert dict(baggage.get_all(W3CBaggagePropagator().extract(scope, getter=ASGIGetter()))) == {"a": "1"}


def test_getter_keys() -> None:
    """Getter.keys lists lower-case names in order."""
    assert MetadataGetter().keys([("A", "1"), ("b", b"2")]) == ["a", "b"]
    assert HeadersGetter().keys(httpx.Headers({"X-Y": "1"})) == ["x-y"]
    assert HeadersGetter().keys(OrderedDict([("X-Y", "1")])) == ["x-y"]
    assert ASGIGetter().keys({"headers": [(b"x", b"1")]}) == ["x"]


def test_propagator_dispatches_own_getters_and_setters(prop: Propagator) -> None:
    """Propagator.extract/inject with hoptel's getters and setters give the fast paths' results."""
    headers = httpx.Headers()
    prop.inject(headers, SOURCE, setter=HeadersSetter())
    _check(prop.extract(headers, getter=HeadersGetter()))
    _check(prop.extract(prop.inject_metadata(None, SOURCE), getter=MetadataGetter()))
    raw = [(key.encode(), value.encode()) for key, value in headers.items()]
    _check(prop.extract({"headers": raw}, getter=ASGIGetter()))
