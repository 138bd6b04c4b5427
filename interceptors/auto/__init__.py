"""Zero-code: ``hoptel.instrument()``, ASGI application wrapping and the ``opentelemetry-instrument`` distro."""
