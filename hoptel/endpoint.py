"""The metrics endpoint: a registry served over HTTP(S) on its own port, by a daemon thread.

``GET /metrics`` and ``HEAD /metrics`` answer in the Prometheus text format 0.0.4, or in OpenMetrics 1.0
(which carries the exemplars linking a latency bucket to a trace) when the ``Accept`` header asks for
``application/openmetrics-text``; the body is gzipped when the scraper accepts it. Any other path is 404, any
other method 405 with ``Allow: GET, HEAD``. Requests are served concurrently, one daemon thread per
connection; a collector that raises answers 500 and is logged on the ``hoptel.endpoint`` logger, and the
server keeps running. Nothing is written to stderr per request.

>>> from prometheus_client import CollectorRegistry
>>> endpoint = MetricsEndpoint.start(CollectorRegistry(), host="127.0.0.1", port=0)
>>> endpoint.url.startswith("http://127.0.0.1:")
True
>>> endpoint.close()
"""

from __future__ import annotations

import errno
import gzip
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector

from hoptel.background import Once, start_daemon
from hoptel.tls import TLSFiles, server_context

__all__ = ["ADDR_VARIABLE", "METRICS_PATH", "AddressInUseError", "MetricsEndpoint", "TLSFiles"]

ADDR_VARIABLE = "HOPTEL_METRICS_ADDR"
METRICS_PATH = "/metrics"

_ALLOW = "GET, HEAD"
_TEXT = "text/plain; charset=utf-8"
_REQUEST_TIMEOUT_S = 10.0  # a connection idle this long (or a stalled TLS handshake) is dropped
_POLL_INTERVAL_S = 0.1  # how quickly close() stops the accept loop
_JOIN_TIMEOUT_S = 5.0
_GZIP_LEVEL = 6

_logger = logging.getLogger("hoptel.endpoint")


class AddressInUseError(ValueError):
    """The metrics address is held by another socket (a ``ValueError`` naming ``HOPTEL_METRICS_ADDR``)."""


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    """Serves the registry at ``/metrics``; everything else is 404 or 405."""

    server: _Server
    timeout = _REQUEST_TIMEOUT_S

    def do_GET(self) -> None:
        """Serve the metrics with their body."""
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        """Serve the metrics' headers only."""
        self._serve(send_body=False)

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server looks up do_<METHOD>; every method without one is answered 405 instead of 501.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        self._respond(405, b"Method Not Allowed: use GET or HEAD\n", _TEXT, True, allow=_ALLOW)

    def _serve(self, *, send_body: bool) -> None:
        url = urlsplit(self.path)
        if url.path != METRICS_PATH:
            self._respond(404, b"Not Found: metrics are at /metrics\n", _TEXT, send_body)
            return
        registry: Collector = self.server.registry
        names = parse_qs(url.query).get("name[]")
        restrict = getattr(registry, "restricted_registry", None)  # CollectorRegistry, and a worker group's view
        if names and restrict is not None:
            registry = restrict(names)
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        try:
            body = encoder(registry)
        except Exception:
            _logger.warning("a collector failed while serving %s", METRICS_PATH, exc_info=True)
            self._respond(500, b"Internal Server Error: a collector failed\n", _TEXT, send_body)
            return
        encoding = None
        if gzip_accepted(self.headers.get("Accept-Encoding", "")):
            body = gzip.compress(body, compresslevel=_GZIP_LEVEL)
            encoding = "gzip"
        self._respond(200, body, content_type, send_body, encoding=encoding)

    def _respond(
        self,
        status: int,
        body: bytes,
        content_type: str,
        send_body: bool,
        allow: str | None = None,
        encoding: str | None = None,
    ) -> None:
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if allow is not None:
            self.send_header("Allow", allow)
        if encoding is not None:
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Write no access log."""


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that binds without a DNS lookup, stays quiet, and does TLS per connection."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        family: socket.AddressFamily,
        registry: Collector,
        context: ssl.SSLContext | None,
    ) -> None:
        self.address_family = family
        self.registry = registry
        self.ssl_context = context
        super().__init__(address, _Handler, bind_and_activate=False)

    def server_bind(self) -> None:
        """Bind; unlike HTTPServer, skip the reverse DNS lookup of the host (it can take seconds)."""
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Handshake TLS (if configured) in the connection's own thread, then serve it."""
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_REQUEST_TIMEOUT_S)
        try:
            tls_socket = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ValueError):
            return  # a failed handshake (e.g. no client certificate under mTLS) is the client's problem
        try:
            super().finish_request(tls_socket, client_address)
        finally:
            tls_socket.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Drop the connection quietly; a client hanging up mid-response is routine."""
        _logger.debug("metrics connection from %s failed", client_address, exc_info=True)


class MetricsEndpoint:
    """A running metrics server. Create it with :meth:`start`; stop it with :meth:`close`.

    Attributes:
        url: ``http://HOST:PORT/metrics`` (``https://`` with TLS); port 0 is resolved to the bound port.
        host: The host the socket is bound to, as given.
        port: The bound port.
    """

    def __init__(self, server: _Server, thread: threading.Thread, host: str, scheme: str) -> None:
        self._server = server
        self._thread = thread
        self._closing = Once()
        self.host = host
        self.port = server.server_port
        sockname = server.socket.getsockname()
        self._bound_address = (str(sockname[0]), int(sockname[1]))
        self.url = f"{scheme}://{_format_address(host, self.port)}{METRICS_PATH}"

    @classmethod
    def start(
        cls,
        registry: Collector,
        host: str = "127.0.0.1",
        port: int = 9464,
        tls: TLSFiles | None = None,
    ) -> MetricsEndpoint:
        """Bind ``host:port`` and serve ``registry`` from a daemon thread.

        Args:
            registry: What to serve, usually the Telemetry's isolated ``CollectorRegistry``.
            host: An IPv4 or IPv6 address, or ``localhost``; the default is loopback only.
            port: The TCP port; 0 picks a free one (see :attr:`url`).
            tls: Serve HTTPS with these files; with ``client_ca``, require client certificates.

        Raises:
            ValueError: the address is in use or cannot be bound (the message names ``HOPTEL_METRICS_ADDR``
                and the address), or a TLS file is missing or invalid (the message names its variable).
        """
        context = server_context(tls) if tls is not None else None
        address = _format_address(host, port)
        try:
            family, sockaddr = _resolve(host, port)
        except OSError as exc:
            raise ValueError(f"{ADDR_VARIABLE}={address!r}: cannot resolve the host ({exc})") from None
        server = _Server(sockaddr, family, registry, context)
        try:
            server.server_bind()
            server.server_activate()
        except OSError as exc:
            server.server_close()
            error = AddressInUseError if exc.errno == errno.EADDRINUSE else ValueError
            raise error(f"{ADDR_VARIABLE}={address!r}: {_bind_reason(exc)}") from None
        thread = start_daemon(lambda: server.serve_forever(_POLL_INTERVAL_S), f"hoptel-metrics-{server.server_port}")
        return cls(server, thread, host, "http" if context is None else "https")

    @property
    def bound_address(self) -> tuple[str, int]:
        """The listening socket's own address, ``(ip, port)``, e.g. ``("127.0.0.1", 9464)``."""
        return self._bound_address

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closing.done

    def close(self) -> None:
        """Stop accepting, wait for the server thread, and close the socket. Idempotent."""
        if not self._closing.claim():
            return
        self._server.shutdown()
        self._thread.join(_JOIN_TIMEOUT_S)
        self._server.server_close()

    def abandon_after_fork(self) -> None:
        """In a process forked from the one serving: close this copy of the socket, leave the parent serving.

        The serving thread does not exist in the child, so :meth:`close` (which waits for it) must not run there.
        """
        if not self._closing.claim():
            return
        self._server.socket.close()

    def __enter__(self) -> MetricsEndpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closing.done else "serving"
        return f"<MetricsEndpoint {self.url} {state}>"


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    # Prefer IPv4 for names such as "localhost" that resolve to both, as most scrape configs say 127.0.0.1.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _bind_reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "cannot bind: the host is not an address of this machine"
    if exc.errno == errno.EACCES:
        return "cannot bind: permission denied (ports below 1024 need privileges)"
    return f"cannot bind: {(exc.strerror or str(exc)).lower()}"
