"""Entry points for ``opentelemetry-instrument`` (opentelemetry-instrumentation): run an unchanged app under hoptel.

``opentelemetry-instrument python app.py`` loads, in this order (``auto_instrumentation._load``):

1. one ``opentelemetry_distro`` — the one ``OTEL_PYTHON_DISTRO`` names, else the first installed — and calls its
   ``configure()``;
2. ``opentelemetry_configurator`` entry points — the one ``OTEL_PYTHON_CONFIGURATOR`` names, else the first
   installed (the others are skipped with a warning) — and calls ``configure()``;
3. every ``opentelemetry_instrumentor`` not named in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``, through the
   distro's ``load_instrumentor()``.

hoptel registers one of each, all named ``hoptel``:

* :class:`HoptelConfigurator` runs ``hoptel.setup()`` from the ``OTEL_*`` / ``HOPTEL_*`` environment.
* :class:`HoptelInstrumentor` runs ``hoptel.instrument()`` (and ``uninstrument()``).
* :class:`HoptelDistro` loads every instrumentor as usual except the official gRPC ones (``grpc_client``,
  ``grpc_server``, ``grpc_aio_client``, ``grpc_aio_server``), ``httpx``, ``starlette`` and ``fastapi``, which hoptel
  replaces (ASGI apps: see ``hoptel.interceptors.auto.asgi_apps``; ``opentelemetry-instrumentation-asgi`` has no
  instrumentor).

With hoptel's distro in charge (it is the only distro installed, or ``OTEL_PYTHON_DISTRO=hoptel``) hoptel is
chosen over the official gRPC, httpx, Starlette and FastAPI instrumentors without further settings. Under another
distro, choose with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=grpc_client,grpc_server,grpc_aio_client,grpc_aio_server,
httpx,starlette,fastapi`` (hoptel) or ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=hoptel`` (the official ones). Left
with both, hoptel gives way to the official instrumentation wherever it is active, with one warning: never two spans
per hop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from typing import Any

# Both modules start with a file-level "# type: ignore", so mypy sees no names in them (their classes are Any).
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from hoptel.interceptors.auto.zerocode import instrument, uninstrument
from hoptel.telemetry import Telemetry, setup

__all__ = ["REPLACED_INSTRUMENTORS", "HoptelConfigurator", "HoptelDistro", "HoptelInstrumentor"]

_log = logging.getLogger("hoptel.interceptors.auto.distro")

REPLACED_INSTRUMENTORS = frozenset(
    {"grpc_client", "grpc_server", "grpc_aio_client", "grpc_aio_server", "httpx", "starlette", "fastapi"}
)
"""The official ``opentelemetry_instrumentor`` entry points hoptel's distro does not load: hoptel does their job."""

_lock = threading.Lock()
_configured: Telemetry | None = None


class HoptelDistro(BaseDistro):  # type: ignore[misc]  # BaseDistro is Any to mypy (see the imports)
    """The ``opentelemetry_distro`` entry point: loads the other instrumentors, minus those hoptel replaces."""

    def _configure(self, **kwargs: Any) -> None:
        """Nothing to set up here: :class:`HoptelConfigurator` runs ``hoptel.setup()``."""

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        """Instrument with ``entry_point`` unless it is an official instrumentor hoptel replaces."""
        if entry_point.name in REPLACED_INSTRUMENTORS:
            _log.debug("hoptel: not loading %s; hoptel instruments it", entry_point.name)
            return
        super().load_instrumentor(entry_point, **kwargs)


class HoptelConfigurator:
    """The ``opentelemetry_configurator`` entry point: ``hoptel.setup()`` from the environment, once."""

    def configure(self, **kwargs: Any) -> None:
        """Run ``hoptel.setup()`` (the keyword arguments opentelemetry-instrument passes are not settings)."""
        global _configured
        with _lock:
            if _configured is None or _configured.closed:
                _configured = setup()


def configured_telemetry() -> Telemetry | None:
    """The Telemetry :class:`HoptelConfigurator` set up, if it ran."""
    return _configured


class HoptelInstrumentor(BaseInstrumentor):  # type: ignore[misc]  # see HoptelDistro
    """The ``opentelemetry_instrumentor`` entry point: ``hoptel.instrument()`` / ``hoptel.uninstrument()``."""

    def instrumentation_dependencies(self) -> Collection[str]:
        """None beyond hoptel's own (grpcio and httpx are hoptel's dependencies; a missing one is skipped)."""
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        instrument(kwargs.get("telemetry"))

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
