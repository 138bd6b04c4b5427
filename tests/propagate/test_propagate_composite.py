"""The composite Propagator: OTEL_PROPAGATORS parsing, ordering, fields, fast no-op inject, global install."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import TraceState
from propagate_support import SPAN_HEX, SPAN_ID, TRACE_HEX, TRACEPARENT, remote, span_ctx, with_baggage

from hoptel.hop_span import SPAN_KEY
from hoptel.propagate import DEFAULT_PROPAGATORS, Propagator, propagator_from_env

B3_VALUE = f"{'1' * 32}-{'2' * 16}-0"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_or_empty_means_default(value: str | None) -> None:
    """No value, or an empty one, gives tracecontext,baggage."""
    assert propagator_from_env(value).names == DEFAULT_PROPAGATORS


def test_names_are_trimmed_case_insensitive_and_deduplicated() -> None:
    """Spaces around names and their case do not matter; repeats are ignored."""
    assert propagator_from_env(" B3Multi , tracecontext,b3multi").names == ("b3multi", "tracecontext")


@pytest.mark.parametrize("value", ["jaeger", "tracecontext,xray", "tracecontext,,baggage", "tracecontext,", ",b3"])
def test_bad_value_names_the_variable_and_value(value: str) -> None:
    """Unknown names and empty entries raise ValueError naming the variable and the bad value."""
    with pytest.raises(ValueError, match="OTEL_PROPAGATORS") as info:
        propagator_from_env(value)
    assert repr(value) in str(info.value)


def test_constructor_takes_names_or_a_string() -> None:
    """Propagator takes a list of names or one comma-separated string; unknown names raise ValueError."""
    assert Propagator("b3, baggage").names == ("b3", "baggage")
    assert Propagator(["tracecontext"]).names == ("tracecontext",)
    with pytest.raises(ValueError, match="unknown propagator 'xray'"):
        Propagator(["xray"])


def test_custom_variable_name_in_error() -> None:
    """The error names the variable the caller passed."""
    with pytest.raises(ValueError, match="HOPTEL_X='nope'"):
        propagator_from_env("nope", variable="HOPTEL_X")


def test_none_turns_propagation_off() -> None:
    """'none' (alone or with others, as in OpenTelemetry) extracts nothing and injects nothing."""
    for value in ("none", "tracecontext,none"):
        prop = propagator_from_env(value)
        assert prop.names == ()
        assert prop.fields == set()
        incoming = Context()
        assert prop.extract_headers({"traceparent": TRACEPARENT}, incoming) is incoming
        assert prop.inject_metadata([("a", "b")], span_ctx()) == [("a", "b")]


def test_later_valid_propagator_overrides() -> None:
    """With several formats, each applies in order and a later valid one overrides the span context."""
    headers = {"traceparent": TRACEPARENT, "b3": B3_VALUE}
    assert remote(Propagator(["tracecontext", "b3"]).extract_headers(headers)).span_id == int("2" * 16, 16)
    assert remote(Propagator(["b3", "tracecontext"]).extract_headers(headers)).span_id == SPAN_ID


def test_later_invalid_propagator_does_not_override() -> None:
    """An invalid header of a later format leaves the earlier format's result in place."""
    headers = {"traceparent": TRACEPARENT, "b3": "garbage"}
    assert remote(Propagator(["tracecontext", "b3"]).extract_headers(headers)).span_id == SPAN_ID


def test_same_order_as_opentelemetry_composite() -> None:
    """Extraction order matches OpenTelemetry's CompositePropagator for the same names."""
    from opentelemetry.propagators.b3 import B3SingleFormat
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    headers = {"traceparent": TRACEPARENT, "b3": B3_VALUE}
    for order in (["tracecontext", "b3"], ["b3", "tracecontext"]):
        parts = {"tracecontext": TraceContextTextMapPropagator(), "b3": B3SingleFormat()}
        theirs = CompositePropagator([parts[name] for name in order]).extract(headers)
        assert remote(Propagator(order).extract_headers(headers)) == remote(theirs)


def test_fields_union() -> None:
    """Fields is the union of what each format writes."""
    assert Propagator().fields == {"traceparent", "tracestate", "baggage"}
    assert Propagator(["b3", "b3multi"]).fields == {"b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}


def test_inject_with_nothing_to_write(prop: Propagator) -> None:
    """An empty context (no valid span, no baggage) writes nothing."""
    headers: dict[str, str] = {}
    prop.inject_headers(headers, Context())
    prop.inject(headers, Context())
    assert headers == {}


def test_baggage_only_context_injects_baggage_only(prop: Propagator) -> None:
    """Baggage without a span writes just the baggage header."""
    headers: dict[str, str] = {}
    prop.inject_headers(headers, with_baggage({"a": "1"}))
    assert headers == {"baggage": "a=1"}


def test_extract_default_context_is_empty_root(prop: Propagator) -> None:
    """Without a context argument extraction starts from an empty Context, not the current one."""
    ctx = prop.extract_headers({"baggage": "a=1"})
    assert isinstance(ctx, Context)
    assert dict(baggage.get_all(ctx)) == {"a": "1"}
    assert prop.extract_headers({}) == Context()


def test_is_an_opentelemetry_textmap_propagator_usable_globally(prop: Propagator) -> None:
    """The Propagator can be installed with set_global_textmap and serves opentelemetry.propagate."""
    assert isinstance(prop, TextMapPropagator)
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(prop)
    try:
        carrier: dict[str, str] = {}
        propagate.inject(carrier, with_baggage({"k": "v"}, span_ctx()))
        assert carrier == {"traceparent": f"00-{TRACE_HEX}-{SPAN_HEX}-01", "baggage": "k=v"}
        ctx = propagate.extract(carrier)
        assert remote(ctx).span_id == SPAN_ID
        assert baggage.get_baggage("k", ctx) == "v"
    finally:
        propagate.set_global_textmap(previous)


def test_generic_extract_with_a_getter_returning_odd_values(prop: Propagator) -> None:
    """A foreign getter returning a str, non-str items or raising is handled without error."""
    from opentelemetry.propagators.textmap import Getter

    class OddGetter(Getter[dict[str, object]]):
        def get(self, carrier: dict[str, object], key: str) -> list[str] | None:
            if key == "baggage":
                raise RuntimeError("boom")
            value = carrier.get(key)
            return value  # type: ignore[return-value]  # deliberately not a list

        def keys(self, carrier: dict[str, object]) -> list[str]:
            return list(carrier)

    carrier: dict[str, object] = {"traceparent": TRACEPARENT, "tracestate": [1, "a=1"]}
    ctx = prop.extract(carrier, getter=OddGetter())
    assert remote(ctx).span_id == SPAN_ID
    assert dict(remote(ctx).trace_state) == {"a": "1"}


def test_repr() -> None:
    """The repr names the formats."""
    assert repr(Propagator()) == "Propagator(['tracecontext', 'baggage'])"


HOP_CARRIERS = [
    [],
    [("traceparent", TRACEPARENT)],
    [("traceparent", TRACEPARENT), ("tracestate", "a=1,b=2"), ("baggage", "user=alice")],
    [("baggage", "user=alice,tier=gold")],
    [("traceparent", "00-not-a-valid-header-01"), ("baggage", "user=bob")],
    [("b3", B3_VALUE), ("traceparent", TRACEPARENT)],
    [("x-b3-traceid", "1" * 32), ("x-b3-spanid", "2" * 16), ("x-b3-sampled", "1")],
]


@pytest.mark.parametrize("names", ["tracecontext,baggage", "b3,tracecontext", "tracecontext,b3multi,baggage", "none"])
@pytest.mark.parametrize("pairs", HOP_CARRIERS)
def test_parent_extraction_gives_what_extract_gives(names: str, pairs: list[tuple[str, str]]) -> None:
    """extract_*_parent: the remote parent and entries are those of extract_* (metadata and ASGI scope alike)."""
    prop = Propagator(names)
    scope = {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in pairs]}
    for parent, entries, full in (
        (*prop.extract_metadata_parent(pairs), prop.extract_metadata(pairs)),
        (*prop.extract_asgi_parent(scope), prop.extract_asgi(scope)),
    ):
        expected = remote(full)
        assert parent == (expected if expected.is_valid else None)
        if parent is not None:
            assert parent.is_remote
        assert entries == {key: value for key, value in full.items() if key != SPAN_KEY}


def test_parent_extraction_never_raises() -> None:
    """A carrier that cannot be read gives no parent and no entries, as extract gives an empty context."""

    class Unreadable:
        def __bool__(self) -> bool:
            raise RuntimeError("no")

    assert Propagator().extract_metadata_parent(Unreadable()) == (None, {})  # type: ignore[arg-type]
    assert Propagator().extract_asgi_parent({"headers": 42}) == (None, {})


@pytest.mark.parametrize(
    "names",
    ["tracecontext,baggage", "tracecontext", "baggage,tracecontext", "tracecontext,b3", "b3", "b3multi", "none"],
)
@pytest.mark.parametrize("sampled", [True, False])
@pytest.mark.parametrize("caller", [Context(), with_baggage({"user": "alice"})])
@pytest.mark.parametrize("state", [None, TraceState([("vendor", "1")])])
def test_span_injection_gives_what_inject_gives(
    names: str, sampled: bool, caller: Context, state: TraceState | None
) -> None:
    """inject_span_*(child, caller) writes what inject_* writes for a context with the child current."""
    prop = Propagator(names)
    child_context = span_ctx(trace_id=0x1234, span_id=0x99, sampled=sampled, state=state, context=caller)
    child = remote(child_context)
    metadata = [("x-user", "1"), ("traceparent", "stale")]
    assert prop.inject_span_metadata(metadata, child, caller) == prop.inject_metadata(metadata, child_context)
    via_span: dict[str, str] = {"traceparent": "stale"}
    via_context: dict[str, str] = {"traceparent": "stale"}
    prop.inject_span_headers(via_span, child, caller)
    prop.inject_headers(via_context, child_context)
    assert via_span == via_context
