"""HOPTEL_GRPC_BUCKETS and HOPTEL_HTTP_BUCKETS: the buckets of the scraped and the pushed histograms."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
from push_support import PushingFactory, grpc_calls, http_app, points_named, scrape_buckets
from support import grpc_echo as echo
from support.grpc_servers import sync_grpc_server

import hoptel
from hoptel.interceptors.extra_labels import ExtraLabels
from hoptel.interceptors.recorder import HopRecorder
from hoptel.metrics import LATENCY_BUCKETS
from hoptel.receiver import OTLPReceiver

GRPC_LABELS = {"grpc_type": "unary", "grpc_service": echo.SERVICE, "grpc_method": "Unary"}


def test_grpc_and_http_buckets_apply_to_their_histograms_only(
    receiver: OTLPReceiver, pushing: PushingFactory, echo_server: Any, asgi_server: Any
) -> None:
    """Each variable sets its own histograms' bounds, scraped and pushed alike; +Inf is added."""
    tel = pushing(grpc_buckets="0.001,0.01,1", http_buckets="0.005,0.5")
    grpc_calls(tel, echo_server(tel), 2)
    base = asgi_server(hoptel.ASGIMiddleware(http_app(), tel))
    with httpx.Client(transport=hoptel.HTTPTransport(telemetry=tel), timeout=10) as client:
        assert client.get(f"{base}/items/1").status_code == 200
    assert tel.flush(10.0)

    bounds, counts = scrape_buckets(tel.registry, "grpc_server_handling_seconds", GRPC_LABELS)
    assert bounds == [0.001, 0.01, 1.0]
    assert sum(counts) == 2
    (rpc,) = points_named(receiver, "rpc.server.call.duration")
    assert rpc.explicit_bounds == (0.001, 0.01, 1.0)
    assert list(rpc.bucket_counts) == counts
    for name in ("http.server.request.duration", "http.client.request.duration"):
        (point,) = points_named(receiver, name)
        assert point.explicit_bounds == (0.005, 0.5)
        assert len(point.bucket_counts) == 3


def test_default_buckets_resolve_a_tenth_of_a_millisecond(pushing: PushingFactory) -> None:
    """Unset, both variables leave hoptel's LATENCY_BUCKETS (100 µs .. 10 s), sub-millisecond capable."""
    recorder = HopRecorder.of(pushing())
    assert recorder.http_server_duration.buckets == LATENCY_BUCKETS
    assert recorder.grpc_metrics("client").handling_seconds.buckets == LATENCY_BUCKETS
    assert LATENCY_BUCKETS[0] == 0.0001
    assert LATENCY_BUCKETS[-1] == 10.0


def test_extra_label_series_use_the_configured_buckets(receiver: OTLPReceiver, pushing: PushingFactory) -> None:
    """A histogram with extra labels (extra_labels=) has the configured bounds, scraped and pushed (per code)."""
    tel = pushing(grpc_buckets="0.002,0.2")
    labels = ExtraLabels(["tenant"], lambda call: {"tenant": "acme"})
    interceptor = hoptel.server_interceptor(tel, extra_labels=labels)
    with (
        sync_grpc_server(echo.sync_handler(), interceptors=[interceptor]) as target,
        grpc.insecure_channel(target) as channel,
    ):
        assert channel.unary_unary(echo.UNARY)(b"ok", timeout=10) == b"ok"

    bounds, counts = scrape_buckets(tel.registry, "grpc_server_handling_seconds", {**GRPC_LABELS, "tenant": "acme"})
    assert bounds == [0.002, 0.2]
    assert sum(counts) == 1
    assert tel.flush(10.0)
    (point,) = [p for p in points_named(receiver, "rpc.server.call.duration") if p.attributes.get("tenant") == "acme"]
    assert point.attributes["rpc.grpc.status_code"] == 0
    assert (point.explicit_bounds, list(point.bucket_counts)) == ((0.002, 0.2), counts)
