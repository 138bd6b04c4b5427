"""instrument_httpx on existing clients (mounts, idempotency) and the transports' construction and lifecycle."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from httptest_support import CLIENT_DURATION, TIMEOUT, Observed, Serve, build_app, client_labels, histogram_count
from support.uvicorn_server import run_uvicorn

import hoptel
from hoptel.receiver import OTLPReceiver


def test_instrument_httpx_twice_with_mounts_gives_one_span_per_request(
    serve: Serve, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """instrument_httpx wraps the default transport and each mount once; a second call changes nothing."""
    mounted_base = serve(build_app(observed))
    default_base = serve(build_app(observed))
    client = httpx.Client(
        mounts={mounted_base: httpx.HTTPTransport(), "http://unused.invalid": None},
        timeout=TIMEOUT,
    )
    with client:
        assert hoptel.instrument_httpx(client, telemetry) is client
        wrapped = (client._transport, dict(client._mounts))
        hoptel.instrument_httpx(client, telemetry)
        assert (client._transport, dict(client._mounts)) == wrapped
        assert None in client._mounts.values()
        for base in (mounted_base, default_base):
            client.get(f"{base}/items/1")
            assert len(observed.headers["item"]["traceparent"].split(",")) == 1
    spans = receiver.wait_for_spans(2)
    telemetry.force_flush()
    assert len(receiver.spans()) == 2
    assert sorted(span.attributes["server.port"] for span in spans) == sorted(
        int(base.rsplit(":", 1)[1]) for base in (mounted_base, default_base)
    )
    assert histogram_count(telemetry, CLIENT_DURATION, client_labels("200")) == 2


async def test_instrument_httpx_async_client_already_using_hoptel(
    serve: Serve, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """An AsyncClient built with hoptel.AsyncHTTPTransport is left alone by instrument_httpx: one span."""
    base = serve(build_app())
    transport = hoptel.AsyncHTTPTransport(telemetry=telemetry)
    client = httpx.AsyncClient(transport=transport, mounts={"http://other.invalid": httpx.AsyncHTTPTransport()})
    async with client:
        hoptel.instrument_httpx(client, telemetry)
        hoptel.instrument_httpx(client, telemetry)
        assert client._transport is transport
        assert all(isinstance(t, hoptel.AsyncHTTPTransport) for t in client._mounts.values())
        await client.get(f"{base}/items/1")
    receiver.wait_for_spans(1)
    telemetry.force_flush()
    assert len(receiver.spans()) == 1


def test_instrument_httpx_rejects_other_objects() -> None:
    """instrument_httpx(something that is not an httpx client) is a TypeError."""
    with pytest.raises(TypeError, match=r"httpx\.Client"):
        hoptel.instrument_httpx(object())  # type: ignore[type-var]  # deliberately the wrong type


def test_transport_kwargs_configure_the_default_transport(
    tmp_path: Path, observed: Observed, telemetry: hoptel.Telemetry, receiver: OTLPReceiver
) -> None:
    """Keyword arguments build the wrapped httpx.HTTPTransport: uds= reaches a server on a Unix socket."""
    socket_path = str(tmp_path / "app.sock")
    with run_uvicorn(build_app(observed), uds=socket_path) as base:
        transport = hoptel.HTTPTransport(telemetry=telemetry, uds=socket_path)
        assert isinstance(transport.transport, httpx.HTTPTransport)
        with httpx.Client(transport=transport, timeout=TIMEOUT) as client:
            assert client.get(f"{base}/items/1").json() == {"item": "1"}
    (span,) = receiver.wait_for_spans(1)
    assert span.attributes["server.address"] == "uds"


def test_transport_and_kwargs_together_is_a_type_error() -> None:
    """Passing a transport and httpx.HTTPTransport arguments at once is refused."""
    with pytest.raises(TypeError, match="either a transport"):
        hoptel.HTTPTransport(httpx.HTTPTransport(), retries=2)
    with pytest.raises(TypeError, match="either a transport"):
        hoptel.AsyncHTTPTransport(httpx.AsyncHTTPTransport(), retries=2)


class _LifecycleProbe(httpx.BaseTransport):
    """A transport that records how it is entered and closed, delegating requests to a real transport."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.calls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)

    def __enter__(self) -> _LifecycleProbe:
        self.calls.append("enter")
        return self

    def __exit__(self, *args: object) -> None:
        self.calls.append("exit")
        self.inner.close()

    def close(self) -> None:
        self.calls.append("close")
        self.inner.close()


class _AsyncLifecycleProbe(httpx.AsyncBaseTransport):
    """The async twin of _LifecycleProbe."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.calls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def __aenter__(self) -> _AsyncLifecycleProbe:
        self.calls.append("enter")
        return self

    async def __aexit__(self, *args: object) -> None:
        self.calls.append("exit")
        await self.inner.aclose()

    async def aclose(self) -> None:
        self.calls.append("close")
        await self.inner.aclose()


def test_close_and_context_manager_delegate(telemetry: hoptel.Telemetry) -> None:
    """Entering, leaving and closing the hoptel transport enter, leave and close the wrapped one."""
    probe = _LifecycleProbe()
    with httpx.Client(transport=hoptel.HTTPTransport(probe, telemetry=telemetry)):
        pass
    hoptel.HTTPTransport(probe, telemetry=telemetry).close()
    assert probe.calls == ["enter", "exit", "close"]


async def test_aclose_and_async_context_manager_delegate(telemetry: hoptel.Telemetry) -> None:
    """Entering, leaving and closing the async transport delegate to the wrapped one."""
    probe = _AsyncLifecycleProbe()
    async with httpx.AsyncClient(transport=hoptel.AsyncHTTPTransport(probe, telemetry=telemetry)):
        pass
    await hoptel.AsyncHTTPTransport(probe, telemetry=telemetry).aclose()
    assert probe.calls == ["enter", "exit", "close"]
