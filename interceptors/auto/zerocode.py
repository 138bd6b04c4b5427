"""Zero-code instrumentation: ``hoptel.instrument()`` makes plain grpc, httpx and ASGI apps use hoptel.

>>> hoptel.setup(service_name="orders")         # doctest: +SKIP
>>> hoptel.instrument()                         # doctest: +SKIP
>>> server = grpc.server(pool)                  # doctest: +SKIP  (gets hoptel.server_interceptor())
>>> client = httpx.Client()                     # doctest: +SKIP  (its transports are hoptel's)

What is patched, and how (all restored by :func:`uninstrument`, the very same objects):

* ``grpc.server`` and ``grpc.aio.server``: hoptel's server interceptor is put first in ``interceptors``.
* ``grpc.insecure_channel`` / ``grpc.secure_channel``: the channel comes back wrapped by
  ``grpc.intercept_channel(channel, hoptel.client_interceptor(target=target))``.
* ``grpc.aio.insecure_channel`` / ``grpc.aio.secure_channel``: hoptel's four aio client interceptors are put first.
* ``grpc.intercept_channel``: when the application wraps such a channel with its own hoptel client interceptor,
  the zero-code one steps aside, so the call still gets one span.
* ``httpx.Client.__init__`` / ``httpx.AsyncClient.__init__`` are wrapped: after the original ``__init__`` the new
  client goes through :func:`hoptel.instrument_httpx`, which wraps its transport and mounted transports. No
  subclass replaces httpx's classes, so ``isinstance`` checks, subclasses of ``httpx.Client`` (which run the
  wrapped ``__init__`` through ``super().__init__()``) and type hints keep working.
* ``starlette.applications.Starlette.build_middleware_stack`` (and ``fastapi.FastAPI``'s): the stack an app
  builds at its first request gets hoptel's ``ASGIMiddleware`` as its outermost layer (see
  :mod:`hoptel.interceptors.auto.asgi_apps`, which also says how an app that is traced already is recognised).

Only what is created after ``instrument()`` through the module attributes is affected (``from grpc import server``
done earlier keeps the original). The factories resolve ``telemetry`` when each server, channel or client is
created: ``None`` means the latest ``hoptel.setup()``'s at that moment.

Never instrumented twice: a server, channel or client the application already gave a hoptel interceptor or
transport is left as it is. Never alongside the official instrumentations: if the instrumentor of
``opentelemetry-instrumentation-grpc`` or ``-httpx`` is active for a thing, or the application passed one of
their interceptors or transports, hoptel leaves that thing alone and logs one warning on ``hoptel.instrument``.
This is checked when ``instrument()`` runs (a thing the official instrumentation already has is not patched) and
again whenever a server, channel or client is created, so the order the two were set up in does not matter.
The OTLP exporter's own gRPC channel is never instrumented (channels created by ``opentelemetry.exporter``
modules, or while instrumentation is suppressed, come back untouched), nor is hoptel's own OTLP receiver.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context

from hoptel.otel_internals import OFFICIALLY_INSTRUMENTED_FLAG, caller_frame, official_instrumentor
from hoptel.otel_internals import SUPPRESS_INSTRUMENTATION_KEY as _SUPPRESS_KEY

if TYPE_CHECKING:
    from hoptel.telemetry import Telemetry

__all__ = ["instrument", "is_instrumented", "step_aside", "uninstrument"]

_log = logging.getLogger("hoptel.instrument")

# _SUPPRESS_KEY: set by the OTel SDK (and hoptel's batch worker) while exporting (see hoptel.otel_internals).
# Callers whose servers and channels are never instrumented: OTel's exporters and hoptel's own receiver.
_EXEMPT_CALLERS = ("opentelemetry.exporter.", "hoptel.receiver")
_HOPTEL_MODULES = "hoptel.interceptors."
# thing -> the official instrumentor class, as "module:Class" (an entry point's notation), looked up, never imported
_OFFICIAL = {
    "grpc.server": "opentelemetry.instrumentation.grpc:GrpcInstrumentorServer",
    "grpc channels": "opentelemetry.instrumentation.grpc:GrpcInstrumentorClient",
    "grpc.aio.server": "opentelemetry.instrumentation.grpc:GrpcAioInstrumentorServer",
    "grpc.aio channels": "opentelemetry.instrumentation.grpc:GrpcAioInstrumentorClient",
    "httpx clients": "opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor",
    "starlette apps": "opentelemetry.instrumentation.starlette:StarletteInstrumentor",
    "fastapi apps": "opentelemetry.instrumentation.fastapi:FastAPIInstrumentor",
}
_MAX_CHAIN = 64  # bound on walking a chain of intercepted channels


class _Patch:
    """One attribute replaced on a module or class, and what was there before."""

    __slots__ = ("name", "original", "owner", "replacement")

    def __init__(self, owner: Any, name: str, replacement: Any) -> None:
        self.owner = owner
        self.name = name
        self.original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        self.replacement = replacement

    def apply(self) -> None:
        setattr(self.owner, self.name, self.replacement)

    def restore(self) -> None:
        current = self.owner.__dict__.get(self.name) if isinstance(self.owner, type) else getattr(self.owner, self.name)
        if current is self.replacement:
            setattr(self.owner, self.name, self.original)
        else:  # someone patched over ours: restoring would drop theirs; ours is inactive from now on
            _log.warning(
                "hoptel: %s.%s was replaced after hoptel.instrument(); left as it is (hoptel's part is now inert)",
                getattr(self.owner, "__name__", self.owner),
                self.name,
            )


class _Session:
    """One ``instrument()``: its telemetry, its patches, the warnings already given, the channels it wrapped."""

    def __init__(self, telemetry: Telemetry | None) -> None:
        self.telemetry = telemetry
        self.active = True
        self.patches: list[_Patch] = []
        self._warned: set[str] = set()
        self._warn_lock = threading.Lock()
        # zero-code sync channel -> (the channel it wraps, its hoptel interceptor)
        self.channels: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()

    def patch(self, owner: Any, name: str, make: Callable[[Any], Any], thing: str | None = None) -> None:
        """Replace ``owner.name`` with ``make(original)``, unless the official instrumentation has ``thing``."""
        if thing is not None and _official_active(thing):
            self.warn_once(thing, f"the official OpenTelemetry instrumentation is active for {thing}")
            return
        patch = _Patch(owner, name, None)
        patch.replacement = make(patch.original)
        patch.apply()
        self.patches.append(patch)

    def warn_once(self, thing: str, why: str) -> None:
        with self._warn_lock:
            if thing in self._warned:
                return
            self._warned.add(thing)
        _log.warning("hoptel: %s; hoptel leaves %s to it (one span per hop)", why, thing)

    def wanted(self, thing: str, existing: Sequence[Any] = ()) -> bool:
        """Whether hoptel should instrument one ``thing`` being created, given what it already has."""
        if not self.active or _exempt_caller():
            return False
        if _official_active(thing):
            self.warn_once(thing, f"the official OpenTelemetry instrumentation is active for {thing}")
            return False
        for obj in existing:
            module = type(obj).__module__
            if module.startswith("opentelemetry.instrumentation."):
                self.warn_once(thing, f"{thing} was given an official OpenTelemetry {type(obj).__name__}")
                return False
            if module.startswith(_HOPTEL_MODULES):
                return False  # the application instrumented it with hoptel itself
        return True


_lock = threading.Lock()
_session: _Session | None = None


def instrument(telemetry: Telemetry | None = None) -> None:
    """Make plain grpc servers and channels, new httpx clients and Starlette/FastAPI apps use hoptel, code unchanged.

    Calling it again while instrumented changes nothing. Libraries that are not installed are skipped.

    Args:
        telemetry: Where spans and metrics go. None: the latest ``hoptel.setup()``'s at the time each server,
            channel or client is created (so call ``setup()`` first, before grpc is imported, to also quieten
            gRPC's C core).
    """
    global _session
    with _lock:
        if _session is not None:
            return
        session = _Session(telemetry)
        try:
            _patch_grpc(session)
            _patch_httpx(session)
            from hoptel.interceptors.auto.asgi_apps import patch_asgi

            patch_asgi(session)
        except BaseException:
            _undo(session)
            raise
        _session = session


def uninstrument() -> None:
    """Put back every original ``instrument()`` replaced (the same objects); nothing happens when not instrumented.

    Servers, channels and clients created meanwhile keep their instrumentation.
    """
    global _session
    with _lock:
        session, _session = _session, None
        if session is not None:
            _undo(session)


def is_instrumented() -> bool:
    """True between ``instrument()`` and ``uninstrument()``."""
    return _session is not None


def _undo(session: _Session) -> None:
    session.active = False
    for patch in reversed(session.patches):
        patch.restore()
    session.patches.clear()


def _exempt_caller() -> bool:
    """True while exporting (instrumentation suppressed) or when called by an exporter or hoptel's receiver."""
    if otel_context.get_value(_SUPPRESS_KEY):
        return True
    try:
        frame = caller_frame(3)  # _exempt_caller <- wanted <- the patched function <- its caller
    except ValueError:  # pragma: no cover - called from the bottom of a stack
        return False
    return str(frame.f_globals.get("__name__", "")).startswith(_EXEMPT_CALLERS)


def _official_active(thing: str) -> bool:
    """Whether the official instrumentor for ``thing`` has been ``instrument()``-ed (never imports it)."""
    module_name, _, class_name = _OFFICIAL[thing].partition(":")
    module = sys.modules.get(module_name)
    instance = official_instrumentor(getattr(module, class_name, None))
    return bool(getattr(instance, "is_instrumented_by_opentelemetry", False))


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
    return args[position] if len(args) > position else kwargs.get(name)


def _prepend(
    args: tuple[Any, ...], kwargs: dict[str, Any], position: int, first: list[Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments with ``first`` put before the ``interceptors`` argument's entries (at ``position``)."""
    if len(args) > position:
        listed = list(args)
        listed[position] = [*first, *(args[position] or ())]
        return tuple(listed), kwargs
    return args, {**kwargs, "interceptors": [*first, *(kwargs.get("interceptors") or ())]}


# -- grpc ---------------------------------------------------------------------------------------------------------


def _patch_grpc(session: _Session) -> None:
    try:
        import grpc
        import grpc.aio
    except ImportError:
        _log.debug("hoptel.instrument: grpc is not installed; skipped")
        return
    from hoptel.interceptors.grpc.aio_client import aio_client_interceptor
    from hoptel.interceptors.grpc.aio_server import aio_server_interceptor
    from hoptel.interceptors.grpc.client import ClientInterceptor, client_interceptor
    from hoptel.interceptors.grpc.server import server_interceptor

    telemetry = session.telemetry

    def server_factory(thing: str, make_interceptor: Callable[[], Any]) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            @functools.wraps(original)
            def server(*args: Any, **kwargs: Any) -> Any:
                existing = list(_argument(args, kwargs, 2, "interceptors") or ())
                if session.wanted(thing, existing):
                    args, kwargs = _prepend(args, kwargs, 2, [make_interceptor()])
                return original(*args, **kwargs)

            return server

        return make

    def aio_channel_factory(position: int) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            @functools.wraps(original)
            def channel(*args: Any, **kwargs: Any) -> Any:
                existing = list(_argument(args, kwargs, position, "interceptors") or ())
                if session.wanted("grpc.aio channels", existing):
                    target = _argument(args, kwargs, 0, "target")
                    kinds = list(aio_client_interceptor(telemetry, target=target))
                    args, kwargs = _prepend(args, kwargs, position, kinds)
                return original(*args, **kwargs)

            return channel

        return make

    intercept = grpc.intercept_channel  # the original, also when intercept_channel itself is patched below

    def sync_channel(original: Any) -> Any:
        @functools.wraps(original)
        def channel(*args: Any, **kwargs: Any) -> Any:
            raw = original(*args, **kwargs)
            if not session.wanted("grpc channels"):
                return raw
            interceptor = client_interceptor(telemetry, target=_argument(args, kwargs, 0, "target"))
            wrapped = intercept(raw, interceptor)
            session.channels[wrapped] = (raw, interceptor)
            return wrapped

        return channel

    def intercept_channel(original: Any) -> Any:
        @functools.wraps(original)
        def intercept_channel(channel: Any, *interceptors: Any) -> Any:
            if session.active and any(isinstance(i, ClientInterceptor) for i in interceptors):
                channel = _step_aside(session, channel)
            return original(channel, *interceptors)

        return intercept_channel

    server = server_factory("grpc.server", lambda: server_interceptor(telemetry))
    aio_server = server_factory("grpc.aio.server", lambda: aio_server_interceptor(telemetry))
    session.patch(grpc, "server", server, "grpc.server")
    session.patch(grpc.aio, "server", aio_server, "grpc.aio.server")
    session.patch(grpc, "insecure_channel", sync_channel, "grpc channels")
    session.patch(grpc, "secure_channel", sync_channel, "grpc channels")
    session.patch(grpc, "intercept_channel", intercept_channel)
    session.patch(grpc.aio, "insecure_channel", aio_channel_factory(3), "grpc.aio channels")
    session.patch(grpc.aio, "secure_channel", aio_channel_factory(4), "grpc.aio channels")


def _zero_code_entry(session: _Session, channel: Any) -> tuple[Any, Any] | None:
    try:
        return session.channels.get(channel)
    except TypeError:  # not weak-referenceable: not one of ours
        return None


def step_aside(channel: Any) -> Any:
    """The channel an application's own hoptel instrumentation should wrap instead of ``channel``.

    ``channel`` itself unless ``instrument()`` is active: then a zero-code channel is replaced by the channel it
    wraps (see ``_step_aside``), so every RPC is recorded once.
    """
    session = _session
    if session is None or not session.active:
        return channel
    return _step_aside(session, channel)


def _step_aside(session: _Session, channel: Any) -> Any:
    """The channel to intercept when the application adds its own hoptel client interceptor to ``channel``.

    A zero-code channel is replaced by the channel it wraps, so the application's interceptor is the only one; a
    zero-code channel deeper in a chain of intercepted channels has its interceptor pass calls through.
    """
    entry = _zero_code_entry(session, channel)
    if entry is not None:
        return entry[0]
    inner = channel
    for _ in range(_MAX_CHAIN):
        inner = getattr(inner, "_channel", None)  # grpc's intercepted channel keeps the one it wraps here
        if inner is None:
            break
        entry = _zero_code_entry(session, inner)
        if entry is not None:
            entry[1].pass_through()
            break
    return channel


# -- httpx --------------------------------------------------------------------------------------------------------


def _patch_httpx(session: _Session) -> None:
    try:
        import httpx
    except ImportError:
        _log.debug("hoptel.instrument: httpx is not installed; skipped")
        return
    from hoptel.interceptors.http.httpx_transport import instrument_httpx

    def wrap_init(original: Any) -> Any:
        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            transports = [self._transport, *(t for t in self._mounts.values() if t is not None)]
            if not getattr(self, OFFICIALLY_INSTRUMENTED_FLAG, False) and session.wanted("httpx clients", transports):
                instrument_httpx(self, session.telemetry)

        return __init__

    session.patch(httpx.Client, "__init__", wrap_init, "httpx clients")
    session.patch(httpx.AsyncClient, "__init__", wrap_init, "httpx clients")
