"""OTLP/HTTP: ``POST /v1/traces``, ``/v1/logs`` and ``/v1/metrics`` with binary protobuf bodies, on a threaded server.

Answers: 200 with the protobuf ``Export*ServiceResponse``; 404 for another path; 405 (``Allow: POST``) for
another method on an OTLP path; 415 for a body that is not ``application/x-protobuf`` (JSON included) or an
unknown ``Content-Encoding``; 411/413 for a missing or oversized body; 400 for a body that does not decode.
``gzip`` and ``deflate`` bodies are accepted. Every connection is closed after its answer (HTTP/1.0), so a
stopped receiver holds no pooled connection open behind the client's back.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import zlib
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from hoptel.receiver.behaviour import Behaviour
from hoptel.receiver.convert import logs_from_request, spans_from_request
from hoptel.receiver.metrics import ReceivedMetric, metrics_from_request
from hoptel.receiver.model import ReceivedLog, ReceivedSpan
from hoptel.receiver.store import TelemetryStore

__all__ = ["PROTOBUF", "OTLPHTTPServer", "start_http_server"]

PROTOBUF = "application/x-protobuf"
"""The only request and response content type served."""

_MAX_BODY_BYTES = 64 * 1024 * 1024
_POLL_INTERVAL_S = 0.05  # how often serve_forever() checks for shutdown(); bounds stop() latency
_SOCKET_TIMEOUT_S = 30.0
_DECOMPRESS_WBITS = zlib.MAX_WBITS | 32  # auto-detects a gzip or zlib header


class _Route(NamedTuple):
    """One OTLP endpoint: how to decode its body, where the records go, and the success body."""

    message: str
    decode: Callable[[bytes], Sequence[Any]]  # raises DecodeError
    add: Callable[[TelemetryStore, Sequence[Any]], None]
    response: bytes


def _decode_traces(body: bytes) -> list[ReceivedSpan]:
    return spans_from_request(ExportTraceServiceRequest.FromString(body), "http")


def _decode_logs(body: bytes) -> list[ReceivedLog]:
    return logs_from_request(ExportLogsServiceRequest.FromString(body), "http")


def _decode_metrics(body: bytes) -> list[ReceivedMetric]:
    return metrics_from_request(ExportMetricsServiceRequest.FromString(body), "http")


_ROUTES: dict[str, _Route] = {
    "/v1/traces": _Route(
        "ExportTraceServiceRequest",
        _decode_traces,
        TelemetryStore.add_spans,
        ExportTraceServiceResponse().SerializeToString(),
    ),
    "/v1/logs": _Route(
        "ExportLogsServiceRequest",
        _decode_logs,
        TelemetryStore.add_logs,
        ExportLogsServiceResponse().SerializeToString(),
    ),
    "/v1/metrics": _Route(
        "ExportMetricsServiceRequest",
        _decode_metrics,
        TelemetryStore.add_metrics,
        ExportMetricsServiceResponse().SerializeToString(),
    ),
}


class OTLPHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that carries the receiver's store and behaviour to its handlers.

    Args:
        host: The address to bind (IPv4 or IPv6 literal, or a name).
        port: The port; 0 picks a free one.
        store: Where accepted spans, logs and metrics go.
        behaviour: Consulted for every export request.
        stopping: Set when the receiver stops; cuts delays short.
    """

    daemon_threads = True

    def __init__(
        self, host: str, port: int, store: TelemetryStore, behaviour: Behaviour, stopping: threading.Event
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.store = store
        self.behaviour = behaviour
        self.stopping = stopping
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s reverse DNS lookup of the host (slow where DNS is absent)."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    server: OTLPHTTPServer
    server_version = "hoptel-receiver"
    timeout = _SOCKET_TIMEOUT_S  # a client that stalls mid-body does not pin a thread forever

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        route = _ROUTES.get(path)
        if route is None:
            self._reply(404, f"no OTLP endpoint at {path}; use /v1/traces, /v1/logs or /v1/metrics")
            return
        self.server.store.count_request("http")
        content_type = self.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if content_type != PROTOBUF:
            self._reply(415, f"unsupported Content-Type {content_type!r}; send {PROTOBUF}")
            return
        body = self._read_body()
        if body is None:
            return
        try:
            records = route.decode(body)
        except DecodeError as exc:
            self._reply(400, f"body is not a valid {route.message}: {exc}")
            return
        refusal = self.server.behaviour.admit(self.server.stopping)
        if refusal is not None:
            if refusal.http_status is None:
                self.close_connection = True  # hang up without an answer
                return
            retry_after = refusal.retry_after_header()
            self._reply(
                refusal.http_status,
                refusal.message,
                () if retry_after is None else (("Retry-After", retry_after),),
            )
            return
        route.add(self.server.store, records)
        self._reply(200, route.response, content_type=PROTOBUF)

    def _read_body(self) -> bytes | None:
        """Return the decoded body, or answer the error and return ``None``."""
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.strip().isdigit():
            self._reply(411, "a Content-Length is required")
            return None
        length = int(length_header)
        if length > _MAX_BODY_BYTES:
            self._reply(413, f"body over {_MAX_BODY_BYTES} bytes")
            return None
        body = self.rfile.read(length)
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding not in ("gzip", "deflate"):
            self._reply(415, f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or identity")
            return None
        decompressor = zlib.decompressobj(_DECOMPRESS_WBITS)
        try:
            plain = decompressor.decompress(body, _MAX_BODY_BYTES)
        except zlib.error as exc:
            self._reply(400, f"body is not valid {encoding}: {exc}")
            return None
        if decompressor.unconsumed_tail:
            self._reply(413, f"decompressed body over {_MAX_BODY_BYTES} bytes")
            return None
        return plain

    def _not_post(self) -> None:
        path = self.path.partition("?")[0]
        if path in _ROUTES:
            self._reply(405, f"{self.command} not allowed on {path}; use POST", (("Allow", "POST"),))
        else:
            self._reply(404, f"no OTLP endpoint at {path}; use /v1/traces, /v1/logs or /v1/metrics")

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_post

    def _reply(
        self,
        status: int,
        body: str | bytes,
        headers: tuple[tuple[str, str], ...] = (),
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        payload = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Send the access log to ``logging`` at DEBUG instead of stderr."""
        logging.getLogger(__name__).debug(format, *args)


def start_http_server(
    host: str, port: int, store: TelemetryStore, behaviour: Behaviour, stopping: threading.Event
) -> tuple[OTLPHTTPServer, threading.Thread]:
    """Bind an OTLP/HTTP server and serve it on a daemon thread.

    Args:
        host: The address to bind.
        port: The port; 0 picks a free one.
        store: Where accepted spans, logs and metrics go.
        behaviour: Consulted for every export request.
        stopping: Set when the receiver stops; cuts delays short.

    Returns:
        The server (its ``server_port`` is the bound port) and the thread serving it. Stop with
        ``server.shutdown()`` then ``server.server_close()``.

    Raises:
        OSError: The address could not be bound.
    """
    server = OTLPHTTPServer(host, port, store, behaviour, stopping)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": _POLL_INTERVAL_S},
        name="hoptel-receiver-http",
        daemon=True,
    )
    thread.start()
    return server, thread
