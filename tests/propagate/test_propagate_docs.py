"""The examples in hoptel.propagate's docstrings run, and the package's public names stay pinned."""

from __future__ import annotations

import doctest
import importlib

import pytest

import hoptel.propagate

MODULES = [
    "hoptel.propagate",
    "hoptel.propagate.b3",
    "hoptel.propagate.baggage",
    "hoptel.propagate.carriers",
    "hoptel.propagate.composite",
    "hoptel.propagate.textmap",
    "hoptel.propagate.tracecontext",
    "hoptel.propagate._core",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    """Every doctest in the module passes."""
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_all(name: str) -> None:
    """Each module declares __all__ and every listed name exists."""
    module = importlib.import_module(name)
    assert all(hasattr(module, attr) for attr in module.__all__)


def test_public_api_is_pinned() -> None:
    """The package's public names (add, don't rename)."""
    assert sorted(hoptel.propagate.__all__) == sorted(
        [
            "ASGIGetter",
            "B3Format",
            "BaggageFormat",
            "DEFAULT_PROPAGATORS",
            "HeadersCarrier",
            "HeadersGetter",
            "HeadersSetter",
            "MAX_BAGGAGE_BYTES",
            "MAX_BAGGAGE_MEMBERS",
            "Metadata",
            "MetadataGetter",
            "MetadataList",
            "MetadataSetter",
            "PROPAGATOR_NAMES",
            "Propagator",
            "TraceContextFormat",
            "format_baggage",
            "format_traceparent",
            "parse_b3_multi",
            "parse_b3_single",
            "parse_baggage",
            "parse_traceparent",
            "parse_tracestate",
            "propagator_from_env",
        ]
    )


def test_span_context_fast_path_is_active() -> None:
    """The installed opentelemetry-api still has the SpanContext tuple layout the fast path relies on."""
    from hoptel.propagate import _core

    assert _core._TUPLE_LAYOUT
