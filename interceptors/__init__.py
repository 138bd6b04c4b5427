"""The integrations: what adapts grpcio, httpx and ASGI to hoptel's one per-hop recorder.

``grpc/`` holds the gRPC servers and clients (sync and aio), ``http/`` the httpx transports and the ASGI
middleware, ``auto/`` the zero-code machinery (``hoptel.instrument()``, the ``opentelemetry-instrument`` distro).
The modules at this level are what every protocol shares: the recorder, its metrics, hooks, exclusions and the
header/metadata capture rules. Users import the public names from ``hoptel``.
"""
