"""Zero-code for ASGI apps: Starlette and FastAPI apps get hoptel's ``ASGIMiddleware`` without a line of code.

Starlette (and FastAPI, its subclass) composes an app's middleware stack once, in ``build_middleware_stack()``,
when the app serves its first request. While :func:`hoptel.instrument` is active that method is wrapped (on
``starlette.applications.Starlette``, and on ``fastapi.FastAPI``, which builds its own stack) so that the stack it
returns is wrapped once more, in :class:`ZeroCodeASGI`: hoptel's ``ASGIMiddleware`` as the outermost layer, outside
Starlette's ``ServerErrorMiddleware``, so an unhandled exception is still seen as the 500 the client gets. Nothing
else of the app is touched (its ``user_middleware`` stays as the application wrote it), no class is replaced, and
``uninstrument()`` puts the original methods back; an app that already built its stack keeps what it has.
FastAPI, when installed, is imported by ``instrument()`` (about 0.2 s once), since its apps are usually created
after it; starlette too, like grpc and httpx.

This hook was chosen over adding ``Middleware(ASGIMiddleware)`` to ``user_middleware`` at construction: that
would need ``__init__`` wrapped all the same, would put hoptel inside ``ServerErrorMiddleware``, and would change
what the application reads back from its own ``user_middleware``.

One SERVER span per request, never two:

* an app given ``hoptel.ASGIMiddleware`` with ``add_middleware`` is left as it is;
* an app wrapped as ``hoptel.ASGIMiddleware(app)`` (outside the app, so its stack cannot tell) is passed through
  per request: :class:`ZeroCodeASGI` steps aside when a SERVER span is already current for the request;
* the official instrumentations: hoptel steps aside, with one warning on ``hoptel.instrument``, for an app with
  OpenTelemetry's ASGI middleware (``opentelemetry-instrumentation-asgi``'s ``OpenTelemetryMiddleware``, added with
  ``add_middleware`` or wrapped around the app), an app ``FastAPIInstrumentor.instrument_app`` /
  ``StarletteInstrumentor.instrument_app`` instrumented, and every app while the official Starlette or FastAPI
  instrumentor is active;
* FastAPI's own telemetry (recent FastAPI versions start a SERVER span in ``FastAPI.__call__``, outside the stack,
  whenever a tracer provider is installed, as ``hoptel.setup()`` does): hoptel steps aside the same way, with one
  warning; ``FastAPI(telemetry={"tracing": False})`` leaves the app's requests to hoptel.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from hoptel.otel_internals import OFFICIALLY_INSTRUMENTED_FLAG

if TYPE_CHECKING:
    from hoptel.interceptors.auto.zerocode import _Session
    from hoptel.interceptors.http.asgi import Receive, Scope, Send

__all__ = ["APPS", "ZeroCodeASGI", "patch_asgi"]

APPS = "Starlette and FastAPI apps"
"""What the warnings call the things this module instruments."""

_OFFICIAL_MODULES = "opentelemetry.instrumentation."


class ZeroCodeASGI:
    """The outermost layer zero-code adds to a Starlette/FastAPI app: hoptel's middleware, unless already traced.

    Args:
        app: The app's own middleware stack.
        session: The ``instrument()`` it belongs to (its telemetry, its warnings).
    """

    def __init__(self, app: Any, session: _Session) -> None:
        from hoptel.interceptors.http.asgi import ASGIMiddleware

        self.app = app
        self._session = session
        self._hoptel = ASGIMiddleware(app, session.telemetry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve through hoptel's middleware, or straight through when a SERVER span is already current."""
        if scope["type"] == "http" and self._traced_outside():
            await self.app(scope, receive, send)
            return
        await self._hoptel(scope, receive, send)

    def _traced_outside(self) -> bool:
        """Whether a middleware outside the stack (hoptel's, OpenTelemetry's, FastAPI's own) started a SERVER span."""
        span = trace.get_current_span()
        if getattr(span, "kind", None) is not SpanKind.SERVER:
            return False
        scope_name = getattr(getattr(span, "instrumentation_scope", None), "name", "") or ""
        if scope_name not in ("", "hoptel"):  # hoptel's lean spans have no scope attribute
            self._session.warn_once(APPS, f"{scope_name} already traces an app's requests")
        return True


def _already_traced(session: _Session, app: Any) -> bool:
    """Whether ``app``'s own stack traces its requests already (hoptel's or an official middleware, an instrumentor)."""
    from hoptel.interceptors.auto.zerocode import _official_active
    from hoptel.interceptors.http.asgi import ASGIMiddleware

    if _official_active("starlette apps") or _official_active("fastapi apps"):
        session.warn_once(APPS, "the official OpenTelemetry instrumentation is active for them")
        return True
    if getattr(app, OFFICIALLY_INSTRUMENTED_FLAG, False):
        session.warn_once(APPS, "an app was instrumented by the official OpenTelemetry instrumentor")
        return True
    for middleware in getattr(app, "user_middleware", ()):
        cls = getattr(middleware, "cls", None)
        if isinstance(cls, type) and issubclass(cls, ASGIMiddleware):
            return True  # the application added hoptel's middleware itself
        if str(getattr(cls, "__module__", "")).startswith(_OFFICIAL_MODULES):
            session.warn_once(APPS, f"an app was given the official OpenTelemetry {cls.__name__}")  # type: ignore[union-attr]  # a class here
            return True
    return False


def patch_asgi(session: _Session) -> None:
    """Wrap ``build_middleware_stack`` of Starlette (and FastAPI, when installed) for ``session``."""
    try:
        from starlette.applications import Starlette
    except ImportError:
        return
    owners: list[type] = [Starlette]
    if importlib.util.find_spec("fastapi") is not None:  # FastAPI builds its own stack, without Starlette's method
        fastapi_app = importlib.import_module("fastapi.applications").FastAPI
        if "build_middleware_stack" in fastapi_app.__dict__:
            owners.append(fastapi_app)

    def make(original: Any) -> Any:
        @functools.wraps(original)
        def build_middleware_stack(self: Any) -> Any:
            stack = original(self)
            if isinstance(stack, ZeroCodeASGI) or not session.active or _already_traced(session, self):
                return stack
            return ZeroCodeASGI(stack, session)

        return build_middleware_stack

    for owner in owners:
        session.patch(owner, "build_middleware_stack", make)
