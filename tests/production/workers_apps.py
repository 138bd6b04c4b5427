"""The apps the worker tests serve with real servers; ``hoptel.setup()`` runs at import, as in a user's module.

Every setting comes from the environment the test gives the server (``OTEL_SERVICE_NAME``,
``HOPTEL_METRICS_ADDR``, ``HOPTEL_METRICS_PUBLISH_INTERVAL``...). Each answer is ``"<pid> <trace_id>"``: which
worker process served the request, and the trace its metrics exemplar points to.

* ``asgi_app``: uvicorn ``--workers`` and gunicorn's ``UvicornWorker``; ``ASGIMiddleware`` records
  ``http_server_request_duration_seconds`` (the request's ``traceparent`` sets the trace id).
* ``wsgi_app``: gunicorn sync/gthread workers; each request makes an instrumented httpx call to
  ``WORKERS_TARGET_URL``, recording ``http_client_request_duration_seconds`` inside a span of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from opentelemetry import trace

import hoptel

telemetry = hoptel.setup()

_clients: dict[int, httpx.Client] = {}


def _answer(trace_id: int) -> bytes:
    return f"{os.getpid()} {trace_id:032x}".encode()


async def _echo(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = _answer(trace.get_current_span().get_span_context().trace_id)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


asgi_app = hoptel.ASGIMiddleware(_echo)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Call the target through hoptel's transport inside a span; answer with the pid and the trace id."""
    client = _clients.get(os.getpid())
    if client is None:  # one per process: a client made before a fork is not used in the child
        client = _clients[os.getpid()] = httpx.Client(transport=hoptel.HTTPTransport(), timeout=10.0)
    with telemetry.tracer.start_as_current_span("handle") as span:
        client.get(os.environ["WORKERS_TARGET_URL"]).raise_for_status()
        trace_id = span.get_span_context().trace_id
    body = _answer(trace_id)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
