"""hoptel.instrument() / uninstrument(): what is patched, restored exactly, idempotent, and what is left alone."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import httpx
from opentelemetry.context import attach, detach, set_value

import hoptel
from hoptel.interceptors.auto import zerocode

PATCHED = [
    (grpc, "server"),
    (grpc, "insecure_channel"),
    (grpc, "secure_channel"),
    (grpc, "intercept_channel"),
    (grpc.aio, "server"),
    (grpc.aio, "insecure_channel"),
    (grpc.aio, "secure_channel"),
    (httpx.Client, "__init__"),
    (httpx.AsyncClient, "__init__"),
]


def _current() -> list[Any]:
    return [owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name) for owner, name in PATCHED]


def test_uninstrument_restores_the_very_same_objects() -> None:
    """Every patched callable is replaced by instrument() and is the original object again after uninstrument()."""
    originals = _current()
    hoptel.instrument()
    assert zerocode.is_instrumented()
    patched = _current()
    assert all(now is not before for now, before in zip(patched, originals, strict=True))
    assert [p.__wrapped__ for p in patched] == originals  # functools.wraps: names and docs kept too
    assert grpc.server.__name__ == "server"
    hoptel.uninstrument()
    assert not zerocode.is_instrumented()
    assert all(now is before for now, before in zip(_current(), originals, strict=True))


def test_instrument_twice_changes_nothing() -> None:
    """A second instrument() keeps the first one's patches; one uninstrument() undoes them."""
    originals = _current()
    hoptel.instrument()
    first = _current()
    hoptel.instrument()
    assert all(now is before for now, before in zip(_current(), first, strict=True))
    hoptel.uninstrument()
    assert all(now is before for now, before in zip(_current(), originals, strict=True))


def test_uninstrument_when_not_instrumented_does_nothing() -> None:
    """uninstrument() without instrument() (or twice) leaves everything as it is."""
    originals = _current()
    hoptel.uninstrument()
    hoptel.instrument()
    hoptel.uninstrument()
    hoptel.uninstrument()
    assert all(now is before for now, before in zip(_current(), originals, strict=True))


def test_a_wrapper_kept_after_uninstrument_passes_through() -> None:
    """Code that took a patched function while instrumented gets plain objects once uninstrumented."""
    hoptel.instrument()
    insecure_channel = grpc.insecure_channel
    hoptel.uninstrument()
    with insecure_channel("127.0.0.1:1") as channel:
        assert type(channel).__module__ == "grpc._channel"
    with httpx.Client() as client:
        assert type(client._transport) is httpx.HTTPTransport


def test_channels_created_while_suppressed_are_plain() -> None:
    """A channel made while instrumentation is suppressed (an exporter reconnecting) is not instrumented."""
    hoptel.instrument()
    token = attach(set_value(zerocode._SUPPRESS_KEY, True))
    try:
        with grpc.insecure_channel("127.0.0.1:1") as channel:
            assert type(channel).__module__ == "grpc._channel"
    finally:
        detach(token)
    with grpc.insecure_channel("127.0.0.1:1") as channel:
        assert type(channel).__module__ == "grpc._interceptor"


def test_exporter_modules_get_plain_channels() -> None:
    """A channel created by an opentelemetry.exporter module (the OTLP exporter's own) is not instrumented."""
    hoptel.instrument()
    scope: dict[str, Any] = {"__name__": "opentelemetry.exporter.otlp.proto.grpc.exporter", "grpc": grpc}
    exec("channel = grpc.insecure_channel('127.0.0.1:1')", scope)  # runs with the exporter module's name
    with scope["channel"] as channel:
        assert type(channel).__module__ == "grpc._channel"


def test_new_httpx_clients_get_hoptel_transports() -> None:
    """httpx.Client() and AsyncClient() made while instrumented get hoptel transports, mounts included."""
    hoptel.instrument()
    with httpx.Client(mounts={"http://internal": httpx.HTTPTransport()}) as client:
        assert isinstance(client._transport, hoptel.HTTPTransport)
        assert all(isinstance(t, hoptel.HTTPTransport) for t in client._mounts.values())
    async_client = httpx.AsyncClient()
    assert isinstance(async_client._transport, hoptel.AsyncHTTPTransport)


def test_httpx_subclasses_are_instrumented_through_super() -> None:
    """A subclass of httpx.Client that calls super().__init__() is instrumented too (no class was replaced)."""

    class MyClient(httpx.Client):
        def __init__(self) -> None:
            super().__init__(timeout=3.0)

    hoptel.instrument()
    with MyClient() as client:
        assert isinstance(client, httpx.Client)
        assert isinstance(client._transport, hoptel.HTTPTransport)
