"""The per-hop metric families, named as go-grpc-middleware and the OTel HTTP conventions name them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from prometheus_client.registry import CollectorRegistry

from hoptel.coded_histogram import CodedHistogram
from hoptel.metrics import LATENCY_BUCKETS, Counter, Histogram

__all__ = ["GrpcMetrics", "HttpClientMetrics", "HttpServerMetrics"]

GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")


class GrpcMetrics:
    """The five ``grpc_{side}_*`` families for one side (``server`` or ``client``); ``buckets`` in seconds."""

    def __init__(self, registry: CollectorRegistry, side: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.side = side
        prefix = f"grpc_{side}"
        self.started = Counter(f"{prefix}_started_total", f"RPCs started on the {side}.", GRPC_LABELS, registry)
        self.handled = Counter(
            f"{prefix}_handled_total",
            f"RPCs completed on the {side}, by gRPC status code.",
            (*GRPC_LABELS, "grpc_code"),
            registry,
        )
        self.msg_received = Counter(
            f"{prefix}_msg_received_total", f"Stream messages received on the {side}.", GRPC_LABELS, registry
        )
        self.msg_sent = Counter(
            f"{prefix}_msg_sent_total", f"Stream messages sent on the {side}.", GRPC_LABELS, registry
        )
        # kept per status code inside (for the OTLP push's status attribute), served per method as before
        self.handling_seconds = CodedHistogram(
            f"{prefix}_handling_seconds",
            f"Latency of RPCs on the {side}, from start to final status (seconds).",
            GRPC_LABELS,
            registry,
            buckets,
        )


class _HttpMetrics:
    """An HTTP side's one family, ``http_{side}_request_duration_seconds``; ``buckets`` in seconds."""

    NAME: ClassVar[str]
    HELP: ClassVar[str]
    LABELS: ClassVar[tuple[str, ...]]

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.duration = Histogram(self.NAME, self.HELP, self.LABELS, registry, buckets)


class HttpClientMetrics(_HttpMetrics):
    """``http_client_request_duration_seconds``."""

    NAME = "http_client_request_duration_seconds"
    HELP = "Duration of HTTP client requests, until the response body is closed (seconds)."
    LABELS = ("http_request_method", "server_address", "http_response_status_code", "error_type")


class HttpServerMetrics(_HttpMetrics):
    """``http_server_request_duration_seconds``; the route label is a template, never a raw path."""

    NAME = "http_server_request_duration_seconds"
    HELP = "Duration of HTTP server requests (seconds)."
    LABELS = ("http_request_method", "http_route", "http_response_status_code")
