"""The OpenTelemetry resource that names the service and this process, built from configuration (not re-read from env).

Every process carries its own ``service.instance.id``, a random UUID v4 as the OTel semantic conventions
recommend, so the telemetry of several workers of one service (uvicorn ``--workers``, gunicorn, a multi-process
gRPC server) stays apart. The id is the one the SDK's ``ServiceInstanceIdResourceDetector`` gives this process
where the installed SDK has that detector (so a ``Resource.create()`` elsewhere in the process agrees), else one
hoptel draws per process. A ``service.instance.id`` in ``OTEL_RESOURCE_ATTRIBUTES`` wins, and is then the same in
every process started or forked with that environment.

A process forked after ``setup()`` (gunicorn ``--preload``, ``multiprocessing`` with fork) starts with a copy of
the parent's resource. In the child, :func:`build_resource`'s resource is given the child's own id in place, by
an ``os.register_at_fork`` hook that runs before the tracer and logger providers' own fork hooks (it is
registered before they are built): those SDK hooks merge the SDK detector's id for the new process into the
providers' resources, which is then the same id (or, with a pinned id, hoptel points the detector at the pinned
value first, so the SDK does not overwrite it). hoptel's hop span encoder re-encodes the resource in the child
too (``hoptel.hop_exporters``).
"""

from __future__ import annotations

import os
import threading
import uuid
from importlib.metadata import PackageNotFoundError, version

import opentelemetry.sdk.resources as sdk_resources
from opentelemetry.sdk.resources import (
    SERVICE_INSTANCE_ID,
    SERVICE_NAME,
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    Resource,
)

from hoptel.background import on_fork
from hoptel.config import Config
from hoptel.otel_internals import pin_sdk_service_instance_id, replace_resource_attributes

__all__ = ["SERVICE_INSTANCE_ID", "build_resource", "hoptel_version", "instance_id"]

_own_lock = threading.Lock()
_own_id: tuple[int, str] | None = None  # (pid, id) when the SDK has no instance id detector


def hoptel_version() -> str:
    """The installed hoptel version, or ``0+unknown`` from a plain checkout."""
    try:
        return version("hoptel")
    except PackageNotFoundError:  # pragma: no cover - only outside an install
        return "0+unknown"


def instance_id() -> str:
    """This process's generated ``service.instance.id``: a UUID v4, a new one in every process (forked too).

    It ignores ``OTEL_RESOURCE_ATTRIBUTES``; :func:`build_resource` lets a configured value win.
    """
    global _own_id
    detector = getattr(sdk_resources, "ServiceInstanceIdResourceDetector", None)
    if detector is not None:
        value = detector().detect().attributes.get(SERVICE_INSTANCE_ID)
        if isinstance(value, str) and value:
            return value
    pid = os.getpid()  # SDKs before the instance id detector
    with _own_lock:
        if _own_id is None or _own_id[0] != pid:
            _own_id = (pid, str(uuid.uuid4()))
        return _own_id[1]


def build_resource(config: Config) -> Resource:
    """``OTEL_RESOURCE_ATTRIBUTES`` plus ``service.name``, SDK info and this process's ``service.instance.id``.

    ``service.name`` is the argument or OTEL_SERVICE_NAME when given; a ``service.instance.id`` from
    OTEL_RESOURCE_ATTRIBUTES wins over the generated one. In a process forked later the returned resource takes
    the child's id (see the module docstring): build the resource before the providers that carry it.
    """
    pinned = dict(config.resource_attributes).get(SERVICE_INSTANCE_ID)
    attributes: dict[str, str] = {
        TELEMETRY_SDK_LANGUAGE: "python",
        TELEMETRY_SDK_NAME: "opentelemetry",
        TELEMETRY_SDK_VERSION: version("opentelemetry-sdk"),
        "telemetry.distro.name": "hoptel",
        "telemetry.distro.version": hoptel_version(),
        SERVICE_INSTANCE_ID: instance_id(),
    }
    attributes.update(config.resource_attributes)
    attributes[SERVICE_NAME] = config.service_name
    resource = Resource(attributes)
    _follow_forks(resource, pinned)
    return resource


def _follow_forks(resource: Resource, pinned: str | None) -> None:
    """In a forked child, give ``resource`` the child's instance id (the hook holds it weakly)."""
    on_fork(resource, after_in_child=lambda live: _renew_in_child(live, pinned))


def _renew_in_child(resource: Resource, pinned: str | None) -> None:
    """Set the child's id on ``resource`` in place, and on the SDK detector when the id is pinned.

    In place, because every tracer, logger and span of the child shares this one object (``Resource`` keeps its
    attributes in ``_attributes``). With a pinned id the SDK's detector is pointed at it for this pid (its two
    private module variables, where they exist), so the providers' own fork hooks merge the pinned value.
    """
    if pinned is not None:
        pin_sdk_service_instance_id(pinned, os.getpid())  # private: see the docstring and hoptel.otel_internals
        value = pinned
    else:
        value = instance_id()
    attributes = dict(resource.attributes)
    attributes[SERVICE_INSTANCE_ID] = value
    replace_resource_attributes(resource, attributes)  # private: see the docstring and hoptel.otel_internals
