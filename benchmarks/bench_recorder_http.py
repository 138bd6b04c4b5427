"""Cost of one HTTP client hop through ``hoptel.HTTPTransport``, sampled and unsampled, against httpx.MockTransport.

Run: ``python benchmarks/bench_recorder_http.py``. Prints CPU microseconds per request (all threads, so
exporting the sampled spans is included; best of several rounds) for:

- the bare ``httpx.MockTransport`` (what any request costs before instrumentation),
- ``hoptel.HTTPTransport`` around it, sampled (span started, injected, ended, queued for export; histogram
  observed with an exemplar) and unsampled (context injected, histogram observed, no span recorded),
- the official ``opentelemetry-instrumentation-httpx`` transport around it, sampled, for scale.

Each request is sent with ``transport.handle_request()`` and its body read and closed, which is where a hoptel hop
ends, so the numbers are the transport's own cost without httpx.Client's. Sampled spans go through a real batch
processor into an exporter that discards them; each round ends with a flush, inside the measured time, so no span
is dropped and its encoding is counted.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from microbench import bench_telemetry, best_cpu_us  # benchmarks/ (the script's folder) is on sys.path
from opentelemetry.instrumentation.httpx import SyncOpenTelemetryTransport

import hoptel

CALLS_PER_ROUND = 5_000  # microbench.best_cpu_us's default
URL = "http://inventory.internal:8080/items/42?token=s3cret"


def respond(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b'{"item": 42}')


def hop(transport: httpx.BaseTransport) -> Callable[[], None]:
    """One request through ``transport``: send, read the body, close (the hop ends here)."""

    def call() -> None:
        response = transport.handle_request(httpx.Request("GET", URL))
        response.read()
        response.close()

    return call


def telemetry(sampler: str) -> hoptel.Telemetry:
    return bench_telemetry(sampler, queue_size=4 * CALLS_PER_ROUND)


def main() -> None:
    mock = httpx.MockTransport(respond)
    results: dict[str, float] = {"bare httpx.MockTransport": best_cpu_us(hop(mock))}

    for label, sampler in (("sampled", "always_on"), ("unsampled", "always_off")):
        tel = telemetry(sampler)
        try:
            transport = hoptel.HTTPTransport(mock, telemetry=tel)
            results[f"hoptel.HTTPTransport, {label}"] = best_cpu_us(hop(transport), tel.force_flush)
            dropped = tel.registry.get_sample_value("hoptel_spans_dropped_total") or 0.0
        finally:
            tel.shutdown()
        if dropped:
            raise SystemExit(f"{dropped:.0f} spans were dropped; the sampled timing would be wrong")

    tel = telemetry("always_on")
    try:
        official = SyncOpenTelemetryTransport(mock, tracer_provider=tel.tracer_provider)
        results["opentelemetry-instrumentation-httpx transport, sampled"] = best_cpu_us(hop(official), tel.force_flush)
    finally:
        tel.shutdown()

    bare = results["bare httpx.MockTransport"]
    width = max(len(name) for name in results)
    print(f"{'one client hop':<{width}}  {'µs/request':>10}  {'overhead µs':>11}")
    for name, value in results.items():
        print(f"{name:<{width}}  {value:>10.1f}  {value - bare:>11.1f}")


if __name__ == "__main__":
    main()
