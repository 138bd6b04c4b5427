"""The OpenTelemetry resource that names the service, built from configuration only (not re-read from env)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    Resource,
)

from hoptel.config import Config

__all__ = ["build_resource", "hoptel_version"]


def hoptel_version() -> str:
    """The installed hoptel version, or ``0+unknown`` from a plain checkout."""
    try:
        return version("hoptel")
    except PackageNotFoundError:  # pragma: no cover - only outside an install
        return "0+unknown"


def build_resource(config: Config) -> Resource:
    """``OTEL_RESOURCE_ATTRIBUTES`` plus ``service.name`` (the argument or OTEL_SERVICE_NAME wins) and SDK info."""
    attributes: dict[str, str] = {
        TELEMETRY_SDK_LANGUAGE: "python",
        TELEMETRY_SDK_NAME: "opentelemetry",
        TELEMETRY_SDK_VERSION: version("opentelemetry-sdk"),
        "telemetry.distro.name": "hoptel",
        "telemetry.distro.version": hoptel_version(),
    }
    attributes.update(config.resource_attributes)
    attributes[SERVICE_NAME] = config.service_name
    return Resource(attributes)
