"""The demo's four services, each runnable on its own: ``python -m examples.services.<name> --help``.

gateway (HTTP, Starlette) -> orders (gRPC aio) -> inventory (sync gRPC) and -> pricing (HTTP, Starlette, B3 only).
"""
