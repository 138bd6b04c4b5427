"""A WSGI app for the signal tests under gunicorn's sync workers: ``hoptel.setup()`` at import.

hoptel has no WSGI middleware, so each request opens a SERVER span itself (``GET /items/{name}``, with
``url.path``), logs ``handled <name>`` inside it and answers ``name``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.trace import SpanKind

import hoptel

_telemetry = hoptel.setup(service_name="signals-wsgi")
_log = logging.getLogger("signals.app")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer ``GET /items/<name>`` with ``name``, in a SERVER span."""
    path = environ.get("PATH_INFO", "")
    with _telemetry.tracer.start_as_current_span(
        "GET /items/{name}", kind=SpanKind.SERVER, attributes={"url.path": path}
    ):
        name = path.rsplit("/", 1)[-1]
        _log.info("handled %s", name)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name.encode()]
