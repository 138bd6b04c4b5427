"""A ``GrpcRoute`` is everything fixed about one method on one side, computed once and cached.

The span name, the span attributes, and the metric children for the method's labels are all built on the first
call of a method and reused for every later call, so the per-call path does no parsing and no label lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from opentelemetry.util.types import AttributeValue

from hoptel.coded_histogram import CodedHistogramChild, StatusKey
from hoptel.interceptors.grpc.names import (
    BIDI_STREAM,
    CLIENT_STREAM,
    SERVER_STREAM,
    STATUS,
    UNKNOWN_METHOD,
    StatusInfo,
    parse_method_name,
)
from hoptel.interceptors.hop_metrics import GrpcMetrics
from hoptel.metrics import CounterChild, HistogramChild

__all__ = ["GrpcOutcome", "GrpcRoute", "SemconvMode", "grpc_status_attributes"]

Attributes = Mapping[str, AttributeValue]
_OK = grpc.StatusCode.OK


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


@dataclass(slots=True, eq=False)
class GrpcOutcome:
    """What ending a call of one route with one status code records: the handled series, span attributes, status.

    ``histogram`` is the part of the route's latency series for this code (see ``hoptel.coded_histogram``), and
    ``handled`` counts its observations (an ``ObservationCount``): observing the latency counts the call handled.
    """

    handled: CounterChild
    attributes: Attributes
    failed: bool
    status_name: str
    histogram: HistogramChild


class GrpcRoute:
    """One method on one side: names, attributes and metric children, shared by all its calls.

    A side of the RPC that carries exactly one message (a unary request or response) is not counted per call:
    its ``msg_sent`` / ``msg_received`` series counts the latency histogram's observations (one per finished
    call). Interceptors count messages only on the streamed sides.
    """

    __slots__ = (
        "_metrics",
        "_outcomes",
        "attributes",
        "full_name",
        "histogram",
        "method",
        "msg_received",
        "msg_sent",
        "ok",
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
        self.histogram = metrics.handling_seconds.labels(*labels)
        requests_stream = rpc_type in (CLIENT_STREAM, BIDI_STREAM)
        responses_stream = rpc_type in (SERVER_STREAM, BIDI_STREAM)
        sent_streams = responses_stream if self.server else requests_stream
        received_streams = requests_stream if self.server else responses_stream
        self.msg_sent = (
            metrics.msg_sent.labels(*labels) if sent_streams else metrics.msg_sent.count_of(self.histogram, *labels)
        )
        self.msg_received = (
            metrics.msg_received.labels(*labels)
            if received_streams
            else metrics.msg_received.count_of(self.histogram, *labels)
        )
        self._outcomes: dict[grpc.StatusCode, GrpcOutcome] = {}
        # A known method's OK series exists from its first call (dashboards see 0, not nothing); the one "unknown"
        # route gets only the codes it really ends with, so junk method names add a single handled series.
        self.ok: GrpcOutcome | None = self.outcome(_OK) if known else None

    def outcome(self, code: grpc.StatusCode) -> GrpcOutcome:
        """What ending a call with ``code`` records (``ok`` is the OK one, for an identity check on the hot path)."""
        outcome = self._outcomes.get(code)
        if outcome is None:
            status = STATUS[code]
            failed = status.server_error if self.server else status.client_error
            coded = self.histogram
            if not isinstance(coded, CodedHistogramChild):  # pragma: no cover - GrpcMetrics' latency family is coded
                raise TypeError(f"{self.full_name}: the gRPC latency series must be kept per status code")
            histogram = coded.for_code(StatusKey(status.number, status.name, failed))
            # The handled series counts this code's latency observations: one per finished call, no update of its own.
            labels = (self.rpc_type, self.service, self.method, status.go_name)
            handled = self._metrics.handled.count_of(histogram, *labels)
            outcome = GrpcOutcome(handled, self.status_attributes[code], failed, status.name, histogram)
            self._outcomes[code] = outcome
        return outcome
