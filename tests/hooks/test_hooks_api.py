"""The hook API: immutable call views, guarded invocation, option checks, and no cost when nothing is configured."""

from __future__ import annotations

import dataclasses
import doctest
from types import ModuleType

import grpc
import pytest
from hooks_support import hook_errors, raising_hook
from support.log_records import LogRecords

import hoptel
from hoptel.interceptors import enrich, extra_labels, hooks
from hoptel.interceptors.hooks import GrpcCall, Guarded, HttpCall
from hoptel.interceptors.recorder import HopRecorder


def test_views_are_frozen() -> None:
    """A hook cannot change what it is shown."""
    call = GrpcCall("client", "/a.B/C", "unary", (("x-tenant", "acme"),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.method = "/a.B/D"  # type: ignore[misc]  # the error under test
    http = HttpCall("server", "GET", "http://svc/", ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        http.status_code = 500  # type: ignore[misc]  # the error under test


def test_view_get_returns_the_first_value() -> None:
    """get() finds the first value of a key in any case, and None when absent."""
    call = GrpcCall("server", "/a.B/C", "unary", (("x-id", "1"), ("x-id", "2"), ("k-bin", b"\x00")))
    assert (call.get("X-ID"), call.get("k-bin"), call.get("missing")) == ("1", b"\x00", None)
    http = HttpCall("client", "GET", "http://svc/", (("accept", "a"), ("accept", "b")))
    assert (http.get("Accept"), http.get("missing")) == ("a", None)


def test_guarded_logs_at_most_once_a_minute(telemetry: hoptel.Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Failures are all counted; the log line repeats only after LOG_INTERVAL_S (on the monotonic clock)."""
    now = [1000.0]
    monkeypatch.setattr(hooks, "_clock", lambda: now[0])
    guarded = Guarded(raising_hook, telemetry.self_metrics.hook_errors, "request_hook", "fallback")
    with LogRecords("hoptel.hooks") as logs:
        assert [guarded(None, None) for _ in range(3)] == ["fallback"] * 3
        now[0] += hooks.LOG_INTERVAL_S - 1
        guarded(None, None)
        assert len(logs.records) == 1
        now[0] += 1
        guarded(None, None)
    assert len(logs.records) == 2
    assert hook_errors(telemetry) == 5


def test_guarded_returns_the_result() -> None:
    """A hook that works is simply called."""
    errors = HopRecorder.of(None).telemetry.self_metrics.hook_errors
    assert Guarded(lambda a, b: a + b, errors, "hook", 0)(2, 3) == 5


@pytest.mark.parametrize(
    "factory",
    [
        hoptel.server_interceptor,
        hoptel.aio_server_interceptor,
        hoptel.client_interceptor,
        hoptel.aio_client_interceptor,
    ],
)
def test_non_callable_hook_is_rejected(factory: object) -> None:
    """A hook that is not callable fails when the interceptor is built, not on the first call."""
    with pytest.raises(TypeError, match="request_hook"):
        factory(request_hook="not a function")  # type: ignore[operator]  # each factory takes request_hook


def test_http_non_callable_hook_is_rejected() -> None:
    """The httpx transport and the middleware check their hooks when built."""
    with pytest.raises(TypeError, match="response_hook"):
        hoptel.HTTPTransport(response_hook=42)  # type: ignore[arg-type]  # the error under test
    with pytest.raises(TypeError, match="request_hook"):
        hoptel.ASGIMiddleware(lambda scope, receive, send: None, request_hook=42)  # type: ignore[arg-type,return-value]  # the error under test


def test_without_options_the_recorder_is_called_directly(telemetry: hoptel.Telemetry) -> None:
    """No hooks and no extra labels: each integration starts hops with the recorder's own method (no extra layer)."""
    recorder = HopRecorder.of(telemetry)
    assert hoptel.client_interceptor(telemetry)._start == recorder.start_grpc_client
    assert hoptel.server_interceptor(telemetry)._start == recorder.start_grpc_server  # type: ignore[attr-defined]  # private, pinned here
    assert next(iter(hoptel.aio_client_interceptor(telemetry)))._start == recorder.start_grpc_client
    assert hoptel.HTTPTransport(telemetry=telemetry)._hops._start == recorder.start_http_client
    middleware = hoptel.ASGIMiddleware(lambda scope, receive, send: None, telemetry)  # type: ignore[arg-type,return-value]  # never called
    assert middleware._start == recorder.start_http_server


def test_with_a_hook_the_hops_are_enriched(telemetry: hoptel.Telemetry) -> None:
    """With a hook, the recorder builds the enriched hop class that runs the response hook."""
    interceptor = hoptel.client_interceptor(telemetry, response_hook=lambda span, call: None)
    route = HopRecorder.of(telemetry).grpc_route("client", "unary", "/a.B/C")
    started = interceptor._start(route, (), None)
    assert started is not None
    hop, _ = started
    assert isinstance(hop, enrich.EnrichedGrpcHop)
    hop.finish(grpc.StatusCode.OK)
    assert hop.ended


@pytest.mark.parametrize("module", [hooks, extra_labels, enrich])
def test_module_doctests_pass(module: ModuleType) -> None:
    """The examples in the hook modules' docstrings run."""
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
