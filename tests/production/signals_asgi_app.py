"""An ASGI app for the signal tests under uvicorn and gunicorn: ``hoptel.setup()`` at import, as apps do.

Starlette (it speaks the lifespan protocol) wrapped in ``hoptel.ASGIMiddleware``; ``GET /items/{name}`` logs
``handled <name>`` and answers ``name``. At import it prints ``IMPORTED <signals>``: the signals whose handler is
hoptel's at that moment (``none``).
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import hoptel
from hoptel.shutdown_signals import installed_signals

hoptel.setup(service_name="signals-asgi")
print("IMPORTED", ",".join(signum.name for signum in installed_signals()) or "none", flush=True)

_log = logging.getLogger("signals.app")


async def _item(request: Request) -> PlainTextResponse:
    name = request.path_params["name"]
    _log.info("handled %s", name)
    return PlainTextResponse(name)


app = hoptel.ASGIMiddleware(Starlette(routes=[Route("/items/{name}", _item)]))
