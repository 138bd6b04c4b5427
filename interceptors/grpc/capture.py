"""How a gRPC interceptor or channel starts its hops: the recorder's (or the hooks') start, capturing metadata.

``HOPTEL_CAPTURE_GRPC_METADATA_SERVER_REQUEST`` / ``_CLIENT_REQUEST`` name metadata keys (or regular expressions
matched against the whole key, ignoring case) whose values go on the span as ``rpc.grpc.request.metadata.<key>``,
a list of strings, the key in lower case; keys that ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS``
matches are recorded as ``[REDACTED]``, binary (``-bin``) values and the never-recorded headers never are. A client
records the caller's own metadata (hoptel's propagation entries not included), a server the invocation metadata.

With nothing configured the start method is the recorder's (or the enrichment's) itself: no added call per RPC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from hoptel.interceptors.enrich import grpc_starts
from hoptel.interceptors.headers import REQUEST_METADATA_PREFIX, HeaderAllowList
from hoptel.interceptors.recorder import GrpcHop, HopRecorder, Metadata

if TYPE_CHECKING:
    from hoptel.interceptors.enrich import GrpcEnrichment
    from hoptel.interceptors.grpc.routes import GrpcRoute

__all__ = ["ClientStart", "ServerStart", "client_start", "server_start"]

ClientStart = Callable[..., "tuple[GrpcHop, list[tuple[str, str | bytes]]] | None"]
"""``start(route, metadata, peer_attributes)``: the hop and the metadata to send, or None (not recorded)."""
ServerStart = Callable[["GrpcRoute", "Metadata | None"], GrpcHop]
"""``start(route, invocation_metadata)``: the server hop."""


def _metadata_capture(recorder: HopRecorder, side: str) -> Callable[[Metadata], dict[str, list[str]]] | None:
    """The span attributes of the request metadata the configuration names for ``side``; None when it names none."""
    settings = recorder.telemetry.config.conventions
    patterns = settings.grpc_server_request if side == "server" else settings.grpc_client_request
    allow = HeaderAllowList(REQUEST_METADATA_PREFIX, (), patterns=patterns, sanitize=settings.sanitize_fields)
    return allow.from_text_pairs if allow else None


def client_start(recorder: HopRecorder, enrichment: GrpcEnrichment | None) -> ClientStart:
    """The client start method, recording the caller's metadata when the configuration asks for it."""
    start: ClientStart = grpc_starts(recorder, enrichment).client
    capture = _metadata_capture(recorder, "client")
    if capture is None:
        return start

    def start_capturing(
        route: GrpcRoute, metadata: Metadata | None, peer: Mapping[str, AttributeValue] | None = None
    ) -> Any:
        started = start(route, metadata, peer)
        if started is not None and metadata:
            span = started[0].span
            if span.is_recording():
                span.set_attributes(capture(metadata))
        return started

    return start_capturing


def server_start(recorder: HopRecorder, enrichment: GrpcEnrichment | None) -> ServerStart:
    """The server start method, recording the invocation metadata when the configuration asks for it."""
    start: ServerStart = grpc_starts(recorder, enrichment).server
    capture = _metadata_capture(recorder, "server")
    if capture is None:
        return start

    def start_capturing(route: GrpcRoute, metadata: Metadata | None) -> GrpcHop:
        hop = start(route, metadata)
        if metadata and hop.span.is_recording():
            hop.span.set_attributes(capture(metadata))
        return hop

    return start_capturing
