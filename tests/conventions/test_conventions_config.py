"""The conventions settings are parsed once by Config: names, precedence, overrides, validation; the allow-list."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import hoptel
from hoptel import conventions
from hoptel.config import Config
from hoptel.interceptors import exclusions
from hoptel.interceptors import headers as http_headers
from hoptel.interceptors.headers import MAX_DECISIONS, HeaderAllowList


@pytest.mark.parametrize("module", [conventions, exclusions, http_headers])
def test_module_doctests_pass(module: ModuleType) -> None:
    """The examples in the module docstrings hold."""
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_defaults_exclude_health_checks_only() -> None:
    """Nothing configured: no URL excluded, no header or metadata captured, grpc.health.v1.Health excluded."""
    settings = Config.load({}).conventions
    assert settings == conventions.ConventionsConfig()
    assert settings.grpc_excluded_services == frozenset({"grpc.health.v1.Health"})
    assert settings.httpx_excluded_urls == settings.asgi_excluded_urls == ()


def test_every_variable_has_a_setup_keyword() -> None:
    """Each variable is a setup() keyword: its name without OTEL_/HOPTEL_, lower-cased; keywords win."""
    overrides = {
        "python_excluded_urls": "/generic",
        "python_asgi_excluded_urls": "/asgi",
        "python_grpc_excluded_services": "a.B, c.D,",
        "instrumentation_http_capture_headers_server_request": "x-a",
        "instrumentation_http_capture_headers_server_response": "x-b",
        "instrumentation_http_capture_headers_client_request": "x-c",
        "instrumentation_http_capture_headers_client_response": "x-d",
        "instrumentation_http_capture_headers_sanitize_fields": "secret",
        "capture_grpc_metadata_server_request": "x-e",
        "capture_grpc_metadata_client_request": "x-f",
        "trace_health_checks": True,
    }
    settings = Config.load({"OTEL_PYTHON_EXCLUDED_URLS": "/from-env"}, overrides=overrides).conventions
    assert settings == conventions.ConventionsConfig(
        httpx_excluded_urls=("/generic",),
        asgi_excluded_urls=("/asgi",),
        grpc_excluded_services=frozenset({"a.B", "c.D"}),
        http_server_request=("x-a",),
        http_server_response=("x-b",),
        http_client_request=("x-c",),
        http_client_response=("x-d",),
        grpc_server_request=("x-e",),
        grpc_client_request=("x-f",),
        sanitize_fields=("secret",),
    )


def test_empty_entries_are_ignored() -> None:
    """``a,,b`` and a trailing comma give two patterns, not an empty one that would match every URL."""
    settings = Config.load({"OTEL_PYTHON_EXCLUDED_URLS": " /a ,, /b ,"}).conventions
    assert settings.httpx_excluded_urls == ("/a", "/b")


def test_bad_health_checks_flag_names_the_variable() -> None:
    """HOPTEL_TRACE_HEALTH_CHECKS takes true/false; anything else fails setup() naming it and the value."""
    with pytest.raises(ValueError, match="HOPTEL_TRACE_HEALTH_CHECKS='sometimes'"):
        hoptel.setup("svc", environ={"HOPTEL_TRACE_HEALTH_CHECKS": "sometimes"}, traces_exporter="none")


def test_pattern_decisions_are_bounded() -> None:
    """With patterns, decisions are kept for MAX_DECISIONS names; later names are matched each time, still right."""
    allow = HeaderAllowList("http.request.header", (), patterns=["x-keep-.*"])
    pairs = [(f"x-junk-{i}", "v") for i in range(MAX_DECISIONS + 10)] + [("x-keep-1", "yes")]
    assert allow.from_text_pairs(pairs) == {"http.request.header.x-keep-1": ["yes"]}
    assert len(allow._decisions) == MAX_DECISIONS  # private: the bounded cache of decisions
    assert allow.from_text_pairs([("X-Keep-2", "upper"), ("x-junk-0", "v")]) == {
        "http.request.header.x-keep-2": ["upper"]
    }


def test_plain_names_among_patterns_are_looked_up() -> None:
    """A pattern that is a plain header name needs no regular expression: the allow-list keeps it as a name."""
    allow = HeaderAllowList("http.request.header", ["X-One"], patterns=["x-two", "authorization"])
    assert allow.names == ("x-one", "x-two")
    assert allow._matcher is None  # private: no regular expression to run per header
    assert allow.from_pairs([(b"X-Two", b"2"), (b"authorization", b"secret")]) == {"http.request.header.x-two": ["2"]}
