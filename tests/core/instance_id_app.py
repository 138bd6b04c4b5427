"""A process for the ``service.instance.id`` tests, run as ``python instance_id_app.py NAME [--fork]``.

After ``hoptel.setup()`` it emits, as ``NAME-parent``: an SDK span, a hop span (``hoptel.ASGIMiddleware`` called
the way a server calls it, which takes hoptel's own span encoding) and a log record (exported over OTLP). With
``--fork`` it then forks; the child emits the same as ``NAME-child`` and shuts down, and the parent waits for it
and emits again as ``NAME-parent-after``. Exporting goes where the OTel variables of the environment say.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import hoptel

Message = MutableMapping[str, Any]


async def _answer(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Message]], send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _request(app: Any, path: str) -> None:
    """One GET through the ASGI app, as a server drives it."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http"}
    scope.update({"path": path, "raw_path": path.encode(), "query_string": b"", "headers": []})
    scope.update({"server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000)})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    await app(scope, receive, send)


def _emit(telemetry: hoptel.Telemetry, who: str) -> None:
    with telemetry.tracer.start_as_current_span(f"sdk-{who}"):
        logging.getLogger("instance.app").warning("log-%s", who)
    asyncio.run(_request(hoptel.ASGIMiddleware(_answer, telemetry), f"/hop-{who}"))


def main() -> None:
    """Emit as the parent, fork when asked, and emit from the child and again from the parent."""
    name = sys.argv[1]
    telemetry = hoptel.setup(service_name="instance-id")
    _emit(telemetry, f"{name}-parent")
    if "--fork" in sys.argv[2:]:
        child = os.fork()
        if child == 0:
            _emit(telemetry, f"{name}-child")
            telemetry.shutdown(timeout=30.0)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the child failed: {status}")
        _emit(telemetry, f"{name}-parent-after")
    telemetry.shutdown(timeout=30.0)


if __name__ == "__main__":
    main()
