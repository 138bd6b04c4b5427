"""HTTP hops in tight loops under callgrind: hoptel's httpx transport and ASGI middleware, no network.

``python -m benchmarks.instructions --parts`` runs this program as the gate runs ``hop_loop`` (same phases, same
determinism) and prints each scenario beside the gRPC ones. Every hoptel scenario has a ``bare`` twin doing the
same without hoptel; the difference is what hoptel adds per request:

- ``http client``: build an ``httpx.Request``, send it through a transport that answers at once with a canned
  streamed ``httpx.Response`` (as ``httpx.HTTPTransport`` returns one), read the body and close it, as
  ``httpx.Client.send`` does. hoptel: the same through ``hoptel.HTTPTransport`` around that transport (the span
  ends and the histogram is observed when the body is closed).
- ``http server``: call an ASGI app that starts a response and sends its body with a uvicorn-like ``http`` scope
  carrying a ``traceparent``; the app leaves a Starlette-like route in the scope. The coroutine is driven
  directly (it never suspends), without an event loop. hoptel: the same app inside ``hoptel.ASGIMiddleware``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

import hoptel
from benchmarks.instructions.hop_loop import TRACE_ID, KeepExporter, count_phases, gate_telemetry

__all__ = ["http_scenarios", "main"]

URL = "http://orders.internal:8000/items/42?page=1"
_RESPONSE_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]
_START = {"type": "http.response.start", "status": 200, "headers": _RESPONSE_HEADERS}
_BODY = {"type": "http.response.body", "body": b"{}", "more_body": False}


class _AnswerAtOnce(httpx.BaseTransport):
    """The transport hoptel's wraps: a 200 with a two-byte streamed body, no network."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=_RESPONSE_HEADERS, stream=httpx.ByteStream(b"{}"), request=request)


class _Route:
    """What Starlette leaves in ``scope["route"]``: an object with the route template as ``path``."""

    path = "/items/{item_id}"


_ROUTE = _Route()


async def _app(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = _ROUTE
    await send(_START)
    await send(_BODY)


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def _scope(sampled: bool) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 53412),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/items/42",
        "raw_path": b"/items/42",
        "query_string": b"page=1",
        "headers": [
            (b"host", b"orders.internal:8000"),
            (b"accept", b"*/*"),
            (b"accept-encoding", b"gzip, deflate"),
            (b"connection", b"keep-alive"),
            (b"user-agent", b"python-httpx/0.29.0"),
            (b"traceparent", f"00-{TRACE_ID}-b7ad6b7169203331-{'01' if sampled else '00'}".encode()),
        ],
        "state": {},
    }


def _client_call(transport: httpx.BaseTransport) -> Callable[[], object]:
    def call() -> None:
        request = httpx.Request("GET", URL)
        response = transport.handle_request(request)
        response.read()
        response.close()

    return call


def _server_call(app: Any, scope: dict[str, Any]) -> Callable[[], object]:
    def call() -> None:
        coroutine = app(scope, _receive, _send)
        try:
            coroutine.send(None)
        except StopIteration:
            return
        raise RuntimeError("the ASGI app suspended")

    return call


def http_scenarios(sampled: bool) -> dict[str, Callable[[], object]]:
    """The hoptel client and server hops for a Telemetry that samples or not (the bare twins: ``main``)."""
    label = "sampled" if sampled else "unsampled"
    telemetry = gate_telemetry(f"parentbased_always_{'on' if sampled else 'off'}", KeepExporter())
    transport = hoptel.HTTPTransport(_AnswerAtOnce(), telemetry=telemetry)
    middleware = hoptel.ASGIMiddleware(_app, telemetry)
    return {
        f"http client hoptel {label}": _client_call(transport),
        f"http server hoptel {label}": _server_call(middleware, _scope(sampled)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Count every scenario (see the module docstring); write the scenario names, in order, to the manifest."""
    args: list[Any] = list(sys.argv[1:] if argv is None else argv)
    n, warmup, manifest = int(args[0]), int(args[1]), Path(args[2])
    calls: dict[str, Callable[[], object]] = {
        "empty": lambda: None,
        "http client bare": _client_call(_AnswerAtOnce()),
        "http server bare": _server_call(_app, _scope(True)),
    }
    calls.update(http_scenarios(sampled=True))
    calls.update(http_scenarios(sampled=False))
    for call in calls.values():
        count_phases(call, n, warmup)
    manifest.write_text(json.dumps({"n": n, "scenarios": list(calls)}), encoding="utf-8")


if __name__ == "__main__":
    main()
