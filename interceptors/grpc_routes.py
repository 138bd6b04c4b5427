"""A ``GrpcRoute`` is everything fixed about one method on one side, computed once and cached.

The span name, the span attributes, and the metric children for the method's labels are all built on the first
call of a method and reused for every later call, so the per-call path does no parsing and no label lookups.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from opentelemetry.util.types import AttributeValue

from hoptel.interceptors.grpc_names import STATUS, UNKNOWN_METHOD, StatusInfo, parse_method_name
from hoptel.interceptors.hop_metrics import GrpcMetrics

__all__ = ["GrpcRoute", "SemconvMode", "grpc_status_attributes"]

Attributes = Mapping[str, AttributeValue]


class SemconvMode:
    """Which RPC semantic-convention attributes to emit (``OTEL_SEMCONV_STABILITY_OPT_IN``)."""

    __slots__ = ("new", "old")

    def __init__(self, opt_in: frozenset[str]) -> None:
        self.new = "rpc" in opt_in or "rpc/dup" in opt_in
        self.old = "rpc" not in opt_in or "rpc/dup" in opt_in


def _base_attributes(service: str, method: str, full_name: str, mode: SemconvMode) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    if mode.old:
        attributes["rpc.system"] = "grpc"
        attributes["rpc.service"] = service
        attributes["rpc.method"] = method
    if mode.new:
        attributes["rpc.system.name"] = "grpc"
        attributes["rpc.method"] = "_OTHER" if method == UNKNOWN_METHOD else full_name.lstrip("/")
    return attributes


def grpc_status_attributes(status: StatusInfo, mode: SemconvMode, server: bool) -> dict[str, AttributeValue]:
    """The attributes a finished RPC adds for its status code."""
    attributes: dict[str, AttributeValue] = {}
    if mode.old:
        attributes["rpc.grpc.status_code"] = status.number
    if mode.new:
        attributes["rpc.status_code"] = status.name
        if status.server_error if server else status.client_error:
            attributes["error.type"] = status.name
    return attributes


class GrpcRoute:
    """One method on one side: names, attributes and metric children, shared by all its calls."""

    __slots__ = (
        "_handled",
        "_metrics",
        "attributes",
        "full_name",
        "histogram",
        "method",
        "msg_received",
        "msg_sent",
        "rpc_type",
        "server",
        "service",
        "span_name",
        "started",
        "status_attributes",
    )

    def __init__(
        self,
        full_name: str,
        rpc_type: str,
        metrics: GrpcMetrics,
        mode: SemconvMode,
        *,
        known: bool = True,
        status_attributes: Mapping[grpc.StatusCode, Attributes],
    ) -> None:
        service, method = parse_method_name(full_name) if known else (UNKNOWN_METHOD, UNKNOWN_METHOD)
        self.full_name = full_name
        self.service = service
        self.method = method
        self.rpc_type = rpc_type
        self.server = metrics.side == "server"
        self.span_name = full_name.lstrip("/")[:256] or UNKNOWN_METHOD
        self.attributes: Attributes = _base_attributes(service, method, full_name, mode)
        self.status_attributes = status_attributes
        labels = (rpc_type, service, method)
        self._metrics = metrics
        self.started = metrics.started.labels(*labels)
        self.msg_received = metrics.msg_received.labels(*labels)
        self.msg_sent = metrics.msg_sent.labels(*labels)
        self.histogram = metrics.handling_seconds.labels(*labels)
        # A known method's OK series exists from its first call (dashboards see 0, not nothing); the one "unknown"
        # route gets only the codes it really ends with, so junk method names add a single handled series.
        pre_made = (grpc.StatusCode.OK,) if known else ()
        self._handled = {code: metrics.handled.labels(*labels, STATUS[code].go_name) for code in pre_made}

    def handled(self, code: grpc.StatusCode) -> None:
        """Count one finished call with ``code``."""
        child = self._handled.get(code)
        if child is None:
            child = self._metrics.handled.labels(self.rpc_type, self.service, self.method, STATUS[code].go_name)
            self._handled[code] = child
        child.inc()
