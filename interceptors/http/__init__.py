"""HTTP: httpx client transports and the pure ASGI server middleware."""
