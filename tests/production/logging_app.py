"""The app the server logging tests serve; ``hoptel.setup()`` runs at import, as in a user's module.

Settings come from the environment the test gives the server (``OTEL_SERVICE_NAME``, the OTLP endpoint of the
test's receiver, ``HOPTEL_METRICS_ADDR=off``).

* ``app``: an ASGI app wrapped in ``hoptel.ASGIMiddleware``. Its lifespan startup logs ``app started`` (after
  uvicorn configured logging); each request logs ``handling <path>`` through the app's logger and through
  ``gunicorn.error`` (what apps under gunicorn often use), and prints ``APP print <path>`` in several parts.
  ``/reconfigure`` first calls ``logging.basicConfig(force=True)`` with a format of its own.
* ``wsgi_app``: a WSGI app for gunicorn's gthread worker, whose access lines go through ``gunicorn.access``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import hoptel

telemetry = hoptel.setup()
log = logging.getLogger("logging_app")


async def _serve(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                log.info("app started")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/reconfigure":  # the app takes the console over after setup(): hoptel must say so
        logging.basicConfig(force=True, level=logging.INFO, format="APP-CONFIG %(name)s %(message)s")
    log.info("handling %s", path)
    logging.getLogger("gunicorn.error").info("gunicorn.error from the app: %s", path)
    print("APP", "print", path)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


app = hoptel.ASGIMiddleware(_serve)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answer ``ok``, logging ``handling <path>``."""
    log.info("handling %s", environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
